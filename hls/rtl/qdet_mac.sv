// qdet_mac: the back half qdet_mvau and qdet_vvau share: PE dot products, accumulation over SF beats, thresholds
// and the output skid.
//
// The caller's S0 presents, under the pipeline enable `en` this module drives, one MAC beat: `v1` valid, PE groups
// of SIMD inputs `x1` (PE p's at [p*SIMD*IN_BITS +: SIMD*IN_BITS]; an MVAU repeats its one vector, a VVAU gathers
// each channel's window), the weight word `w1` (PE p's SIMD weights at [p*SIMD*W_BITS +: SIMD*W_BITS]), whether
// the beat is the first and the last of its channel group (`first1`, `last1`) and the group `nf1`. Then:
//   S1  PE dot products (qdet_dot per PE, or qdet_packdot for PEs sharing one input vector; TREE_LEVELS pipelines
//       the adder trees, which add their stages here: the beat's control rides along as the dots' tag, so this
//       module never restates their latency)
//   S2  accumulate the group's SF beats; with the last one, the threshold row of the group is read (qdet_mt)
//   S3  acc holds a finished channel group: thresholds compared into the output skid (qdet_mt; a pipelined
//       MAC, TREE_LEVELS > 0, also registers the comparison counts before the skid: one more cycle)
// `en` = !v3 || skid ready: everything stalls only while S3 holds a result the skid cannot take, and the skid's
// s_axis_tready is a register, so the caller's s_axis_tready never depends combinationally on m_axis_tready.
module qdet_mac #(
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int IN_BITS = 4,
    parameter int IN_SIGNED = 0,
    parameter int W_BITS = 4,
    parameter int ACC_BITS = 16,
    parameter int STEPS = 0,
    parameter int OUT_BITS = 16,
    parameter int ACT_BIAS = 0,
    parameter int NF = 1,
    parameter T_FILE = "",
    parameter MAC_STYLE = "lut",
    parameter int TREE_LEVELS = 0,
    // 0: one qdet_dot per PE (x1 holds each PE's own inputs, w1 PE*SIMD weights); LANES >= 1: the PEs share PE 0's
    // inputs and w1 holds qdet_packdot's packed words, LANES products per multiplier (an MVAU with MAC_STYLE "dsp").
    parameter int LANES = 0,
    parameter int W_NARROW = 0,  // qdet_packdot's: no weight is -2^(W_BITS-1)
    parameter int WW = PE * SIMD * W_BITS  // w1's width (the caller's weight word)
) (
    input  logic                            ap_clk,
    input  logic                            ap_rst_n,
    output logic                            en,
    input  logic                            v1,
    input  logic                            first1,
    input  logic                            last1,
    input  logic [(NF > 1 ? $clog2(NF) : 1)-1:0] nf1,
    input  logic [PE*SIMD*IN_BITS-1:0]      x1,
    input  logic [WW-1:0]                   w1,
    output logic [PE*OUT_BITS-1:0]          m_axis_tdata,
    output logic                            m_axis_tvalid,
    input  logic                            m_axis_tready
);
    localparam int NFB = NF > 1 ? $clog2(NF) : 1;
    localparam int TAG = 2 + NFB;  // {first, last, nf}

    logic           v2, first2, last2;
    logic [NFB-1:0] nf2;
    logic [PE*ACC_BITS-1:0] dot2;
    logic           v3;
    logic [PE*ACC_BITS-1:0] acc;
    logic           skid_ready;

    assign en = !v3 || skid_ready;

    // ---------------------------------------------------------------- S1: the PE dot products
    // The first PE (or qdet_packdot) carries the beat's control through the dots' pipeline; the other PEs' tags
    // are unused (and removed by synthesis), their valid bits equal PE 0's.
    if (LANES > 0) begin : g_packed
        /* verilator lint_off UNUSEDSIGNAL */
        logic [PE*SIMD*IN_BITS-1:0] x_all;
        /* verilator lint_on UNUSEDSIGNAL */
        assign x_all = x1;
        qdet_packdot #(.PE(PE), .SIMD(SIMD), .X_BITS(IN_BITS), .X_SIGNED(IN_SIGNED), .W_BITS(W_BITS),
                       .ACC_BITS(ACC_BITS), .LANES(LANES), .TREE_LEVELS(TREE_LEVELS), .TAG_BITS(TAG),
                       .W_NARROW(W_NARROW)) u_dot (
            .ap_clk(ap_clk),
            .ap_rst_n(ap_rst_n),
            .en(en),
            .in_valid(v1),
            .tag_in({first1, last1, nf1}),
            .x_flat(x_all[SIMD*IN_BITS-1:0]),
            .w_flat(w1),
            .out_valid(v2),
            .tag_out({first2, last2, nf2}),
            .dot(dot2)
        );
    end else begin : g_dots
        /* verilator lint_off UNUSEDSIGNAL */
        logic [PE-1:0]     valid_pe;
        logic [PE*TAG-1:0] tag_pe;
        /* verilator lint_on UNUSEDSIGNAL */
        for (genvar p = 0; p < PE; p = p + 1) begin : g_pe
            qdet_dot #(.N(SIMD), .X_BITS(IN_BITS), .X_SIGNED(IN_SIGNED), .W_BITS(W_BITS), .ACC_BITS(ACC_BITS),
                       .MAC_STYLE(MAC_STYLE), .TREE_LEVELS(TREE_LEVELS), .TAG_BITS(TAG)) u_dot (
                .ap_clk(ap_clk),
                .ap_rst_n(ap_rst_n),
                .en(en),
                .in_valid(v1),
                .tag_in({first1, last1, nf1}),
                .x_flat(x1[p*SIMD*IN_BITS +: SIMD*IN_BITS]),
                .w_flat(w1[p*SIMD*W_BITS +: SIMD*W_BITS]),
                .out_valid(valid_pe[p]),
                .tag_out(tag_pe[p*TAG +: TAG]),
                .dot(dot2[p*ACC_BITS +: ACC_BITS])
            );
        end
        assign v2 = valid_pe[0];
        assign {first2, last2, nf2} = tag_pe[TAG-1:0];
    end

    // ---------------------------------------------------------------- S2: accumulate; S3 holds the result
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            v3 <= 1'b0;
        end else if (en) begin
            v3 <= v2 && last2;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (en && v2) begin
            for (int p = 0; p < PE; p = p + 1)
                acc[p*ACC_BITS +: ACC_BITS] <= (first2 ? '0 : acc[p*ACC_BITS +: ACC_BITS])
                                               + dot2[p*ACC_BITS +: ACC_BITS];
        end
    end

    // ---------------------------------------------------------------- S3: activation and output skid
    // The threshold row of group nf2 is read with its last accumulation, so it meets acc in S3 (qdet_mt).
    qdet_mt #(.PE(PE), .V_BITS(ACC_BITS), .T_BITS(ACC_BITS), .SIGNED(1), .STEPS(STEPS), .OUT_BITS(OUT_BITS),
              .ACT_BIAS(ACT_BIAS), .DEPTH(NF), .T_FILE(T_FILE), .REG_COMPARE(TREE_LEVELS > 0 ? 1 : 0)) u_act (
        .ap_clk(ap_clk),
        .ap_rst_n(ap_rst_n),
        .en(en),
        .t_addr(nf2),
        .v(acc),
        .v_valid(v3),
        .v_ready(skid_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );
endmodule
