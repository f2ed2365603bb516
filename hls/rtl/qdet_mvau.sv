// qdet_mvau: FINN's matrix-vector-activation unit (MVAU, binaryXnorMode=0), folded PE x SIMD.
//
// For each input vector x (MW elements in SF = MW/SIMD beats) it computes acc[c] = sum_i x[i]*W[i][c] for the MH
// channels in ACC_BITS two's complement, NF = MH/PE output beats of PE channels each, and outputs
// ACT_BIAS + #{k : acc[c] >= T[c][k]} (STEPS > 0) or acc[c] (STEPS = 0). The contract (stream orders, W_FILE and
// T_FILE layouts) is hls/rtl/README.md.
//
// Schedule (FINN's cycle model, NF*SF cycles per vector): pass nf = 0 consumes the input beats one per cycle and
// stores them; passes nf = 1..NF-1 replay the stored vector. Pipeline, one global enable:
//   S0  counters (nf, sf, weight address); input beat accepted; weight ROM, input buffer read (registered)
//   S1  SIMD products and an adder tree per PE (combinational), registered into S2
//   S2  accumulate; threshold ROM read (registered)
//   S3  acc holds a finished channel group: thresholds compared (combinational) into the output skid
// The enable stalls everything only while S3 holds a result the skid cannot take; the skid's s_axis_tready is a
// register, so s_axis_tready here never depends combinationally on m_axis_tready. The ROM read registers sit under
// the same enable, so a read issued before a stall is held, not lost, while the pipeline waits.
module qdet_mvau #(
    parameter int MW = 4,
    parameter int MH = 4,
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int IN_BITS = 4,
    parameter int IN_SIGNED = 0,
    parameter int W_BITS = 4,
    parameter int ACC_BITS = 16,
    parameter int STEPS = 0,
    parameter int OUT_BITS = 16,
    // OUT_SIGNED only documents the output type: ACT_BIAS + count (or acc) truncated to OUT_BITS is the same bits
    // either way.
    /* verilator lint_off UNUSEDPARAM */
    parameter int OUT_SIGNED = 1,
    /* verilator lint_on UNUSEDPARAM */
    parameter int ACT_BIAS = 0,
    parameter W_FILE = "",
    parameter T_FILE = "",
    parameter MAC_STYLE = "lut",
    // Weight memory style (qdet_rom): "auto", "block", "distributed" or "ultra" (FINN's ram_style).
    parameter RAM_STYLE = "auto"
) (
    input  logic                     ap_clk,
    input  logic                     ap_rst_n,
    input  logic [SIMD*IN_BITS-1:0]  s_axis_tdata,
    input  logic                     s_axis_tvalid,
    output logic                     s_axis_tready,
    output logic [PE*OUT_BITS-1:0]   m_axis_tdata,
    output logic                     m_axis_tvalid,
    input  logic                     m_axis_tready
);
    localparam int SF = MW / SIMD;
    localparam int NF = MH / PE;
    localparam int IW = SIMD * IN_BITS;              // input beat
    localparam int WW = PE * SIMD * W_BITS;          // one weight ROM word
    localparam int TW = PE * (STEPS > 0 ? STEPS : 1) * ACC_BITS;  // one threshold ROM word
    localparam int OW = PE * OUT_BITS;
    localparam int SFB = SF > 1 ? $clog2(SF) : 1;
    localparam int NFB = NF > 1 ? $clog2(NF) : 1;
    localparam int WAB = NF * SF > 1 ? $clog2(NF * SF) : 1;
    // A product of an (IN_BITS+1)-bit signed input (sign- or zero-extended) and a W_BITS signed weight.
    localparam int PW = IN_BITS + 1 + W_BITS;
    // Adder tree: leaves at [N2, N2 + SIMD), node n = node 2n + node 2n+1, root at 1.
    localparam int N2 = SIMD > 1 ? (1 << $clog2(SIMD)) : 1;

    // ---------------------------------------------------------------- parameter checks (elaboration time)
    initial begin
        if (MW % SIMD != 0 || MH % PE != 0) $fatal(1, "qdet_mvau: SIMD must divide MW and PE must divide MH");
        if (STEPS == 0 && OUT_BITS != ACC_BITS) $fatal(1, "qdet_mvau: OUT_BITS must equal ACC_BITS when STEPS = 0");
        if (MAC_STYLE != "lut" && MAC_STYLE != "dsp") $fatal(1, "qdet_mvau: MAC_STYLE must be \"lut\" or \"dsp\"");
    end

    // ---------------------------------------------------------------- memories

    // The input vector, written during pass 0 and replayed NF-1 times (simple dual-port RAM, registered read).
    logic [IW-1:0] ibuf [0:SF-1];

    // ---------------------------------------------------------------- pipeline state
    logic           en;          // the whole pipeline advances
    logic [SFB-1:0] sf;
    logic [NFB-1:0] nf;
    logic [WAB-1:0] waddr;
    logic           fire;        // S0 issues a MAC cycle

    logic           v1, first1, last1, use_in1;
    logic [NFB-1:0] nf1;
    logic [IW-1:0]  in1, buf1, x1;
    logic [WW-1:0]  w1;

    logic           v2, first2, last2;
    /* verilator lint_off UNUSEDSIGNAL */  // nf2 and t3 go unused without an activation (STEPS = 0)
    logic [NFB-1:0] nf2;
    logic [PE*ACC_BITS-1:0] dot2;

    logic           v3;
    logic [PE*ACC_BITS-1:0] acc;
    logic [TW-1:0]  t3;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [OW-1:0]  out3;
    logic           skid_ready;

    // The weights, in the memory style the folder chose (qdet_rom), read through its register under the enable
    // (a read issued just before a stall is held, not lost). Its output is the S1 weight register w1.
    qdet_rom #(.WIDTH(WW), .DEPTH(NF * SF), .FILE(W_FILE), .STYLE(RAM_STYLE)) u_weights (
        .clk(ap_clk), .en(en), .addr(waddr), .data(w1)
    );

    assign en = !v3 || skid_ready;
    assign fire = en && (nf != 0 || s_axis_tvalid);
    assign s_axis_tready = en && nf == 0;

    // ---------------------------------------------------------------- S0
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            sf    <= '0;
            nf    <= '0;
            waddr <= '0;
            v1    <= 1'b0;
        end else begin
            if (en) v1 <= fire;
            if (fire) begin
                if (sf == SFB'(SF - 1)) begin
                    sf <= '0;
                    nf <= nf == NFB'(NF - 1) ? '0 : nf + 1'b1;
                end else begin
                    sf <= sf + 1'b1;
                end
                waddr <= waddr == WAB'(NF * SF - 1) ? '0 : waddr + 1'b1;
            end
        end
    end

    always_ff @(posedge ap_clk) begin
        if (en) begin
            buf1    <= ibuf[sf];
            in1     <= s_axis_tdata;
            first1  <= sf == '0;
            last1   <= sf == SFB'(SF - 1);
            use_in1 <= nf == '0;
            nf1     <= nf;
        end
        if (fire && nf == '0) ibuf[sf] <= s_axis_tdata;
    end

    // ---------------------------------------------------------------- S1: products and adder trees
    assign x1 = use_in1 ? in1 : buf1;

    // x extended to IN_BITS+1 signed bits (so unsigned inputs multiply as non-negative numbers).
    function automatic logic signed [IN_BITS:0] xext(input logic [IN_BITS-1:0] x);
        xext = {IN_SIGNED != 0 ? x[IN_BITS-1] : 1'b0, x};
    endfunction

    // Shift-and-add product: a sum of shifted partial products, one per weight bit (the MSB's weight is negative,
    // two's complement), which synthesis keeps in LUT adders instead of mapping a multiplier to a DSP.
    function automatic logic signed [PW-1:0] mul_lut(input logic signed [IN_BITS:0] x, input logic [W_BITS-1:0] w);
        logic signed [PW-1:0] xs;
        logic signed [PW-1:0] r;
        xs = PW'(x);
        r = '0;
        // AND-gated partial products rather than `if (w[j])`: the same adders, and no data-dependent branch in a
        // simulator's inner loop.
        for (int j = 0; j < W_BITS - 1; j = j + 1)
            r = r + ((xs <<< j) & {PW{w[j]}});
        r = r - ((xs <<< (W_BITS - 1)) & {PW{w[W_BITS-1]}});
        mul_lut = r;
    endfunction

    function automatic logic signed [PW-1:0] mul_dsp(input logic signed [IN_BITS:0] x, input logic [W_BITS-1:0] w);
        mul_dsp = PW'(x) * PW'($signed(w));
    endfunction

    function automatic logic signed [PW-1:0] mul(input logic signed [IN_BITS:0] x, input logic [W_BITS-1:0] w);
        mul = MAC_STYLE == "dsp" ? mul_dsp(x, w) : mul_lut(x, w);
    endfunction

    // The dot product of one PE: an adder tree over the SIMD products, leaves at [N2, N2 + SIMD), node n = node 2n +
    // node 2n+1, root 1. Loops in a function (synthesis unrolls them into the same balanced tree): simulators run
    // them far faster than thousands of generated assigns, and a function's locals cannot retrigger an always_comb.
    function automatic logic [ACC_BITS-1:0] dot(input logic [IW-1:0] x, input logic [SIMD*W_BITS-1:0] w);
        logic [ACC_BITS-1:0] tree [0:2*N2-1];
        for (int n = N2 + SIMD; n < 2*N2; n = n + 1)
            tree[n] = '0;  // padding leaves; every other node is written below
        for (int s = 0; s < SIMD; s = s + 1)
            // the cast sign-extends the product (or wraps it, when ACC_BITS < PW)
            tree[N2 + s] = ACC_BITS'(mul(xext(x[s*IN_BITS +: IN_BITS]), w[s*W_BITS +: W_BITS]));
        for (int n = N2 - 1; n >= 1; n = n - 1)
            tree[n] = tree[2*n] + tree[2*n + 1];
        dot = tree[1];
    endfunction


    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            v2 <= 1'b0;
        end else if (en) begin
            v2 <= v1;
        end
    end

    // The products and trees feed the S2 register directly, enabled only while S1 holds a valid beat (dot2 is read
    // only under v2): a simulator then evaluates them once per MAC cycle, not on every clock, and synthesis gets
    // the same tree with a clock enable on its output register.
    always_ff @(posedge ap_clk) begin
        if (en && v1) begin
            for (int p = 0; p < PE; p = p + 1)
                dot2[p*ACC_BITS +: ACC_BITS] <= dot(x1, w1[p*SIMD*W_BITS +: SIMD*W_BITS]);
        end
    end

    always_ff @(posedge ap_clk) begin
        if (en) begin
            first2 <= first1;
            last2  <= last1;
            nf2    <= nf1;
        end
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
                acc[p*ACC_BITS +: ACC_BITS] <= (first2 ? '0 : acc[p*ACC_BITS +: ACC_BITS]) + dot2[p*ACC_BITS +: ACC_BITS];
        end
    end

    // ---------------------------------------------------------------- S3: activation
    if (STEPS > 0) begin : g_act
        logic [TW-1:0] tmem [0:NF-1];
        initial $readmemh(T_FILE, tmem);

        always_ff @(posedge ap_clk) begin
            if (en) t3 <= tmem[nf2];
        end

        // Thresholds ascend, but counting every satisfied comparison needs no ordering and ties count (x >= t).
        always_comb begin
            for (int p = 0; p < PE; p = p + 1) begin
                int cnt;
                cnt = ACT_BIAS;
                for (int k = 0; k < STEPS; k = k + 1)
                    if ($signed(acc[p*ACC_BITS +: ACC_BITS]) >= $signed(t3[(p*STEPS + k)*ACC_BITS +: ACC_BITS]))
                        cnt = cnt + 1;
                out3[p*OUT_BITS +: OUT_BITS] = cnt[OUT_BITS-1:0];
            end
        end
    end else begin : g_noact
        assign t3 = '0;
        assign out3 = acc;
    end

    qdet_skid #(.WIDTH(OW)) u_skid (
        .ap_clk(ap_clk),
        .ap_rst_n(ap_rst_n),
        .s_axis_tdata(out3),
        .s_axis_tvalid(v3),
        .s_axis_tready(skid_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );
endmodule
