// qdet_vvau: FINN's vector-vector-activation unit (VVAU, a depthwise convolution's MACs), folded PE x SIMD.
//
// Per output pixel, channel c's accumulator is acc[c] = sum_k x[c][k]*W[c][k] over the K = K_H*K_W window
// positions, in ACC_BITS two's complement; the output is ACT_BIAS + #{j : acc[c] >= T[c][j]} (STEPS > 0) or acc[c]
// (STEPS = 0). Channels fold into NF = C/PE groups of PE, window positions into SF = K/SIMD groups of SIMD.
// Input: the depthwise sliding-window stream, NF*SF beats per pixel, beat nf*SF + sf, lane s*PE + p holding
// x[nf*PE + p][sf*SIMD + s]. Output: NF beats per pixel, beat nf, lane p = channel nf*PE + p. The contract (stream
// orders, W_FILE and T_FILE layouts, timing) is hls/rtl/README.md.
//
// Unlike the MVAU every input element is used once, so there is no vector buffer: one input beat per cycle, one
// output beat per SF cycles, FINN's C*K/(PE*SIMD) cycles per pixel. Pipeline, one global enable:
//   S0  counters (sf, nf, weight address); input beat accepted and registered; weight ROM read (registered)
//   S1  PE dot products of SIMD products each (qdet_dot; TREE_LEVELS > 0 pipelines the products and tree)
//   S2  accumulate over the SF beats of a channel group; threshold ROM read (registered, qdet_mt)
//   S3  acc holds a finished channel group: thresholds compared (combinational) into the output skid (qdet_mt)
// S1-S3 are qdet_mac, shared with qdet_mvau.
// The enable stalls everything only while S3 holds a result the skid cannot take; the skid's s_axis_tready is a
// register, so s_axis_tready here never depends combinationally on m_axis_tready. The ROM read registers sit
// under the same enable, so a read issued before a stall is held, not lost.
module qdet_vvau #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int K = 9,
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
    parameter RAM_STYLE = "auto",
    // Adder-tree levels per pipeline stage in the dot products (qdet_dot; 0: one combinational stage).
    parameter int TREE_LEVELS = 0
) (
    input  logic                        ap_clk,
    input  logic                        ap_rst_n,
    input  logic [SIMD*PE*IN_BITS-1:0]  s_axis_tdata,
    input  logic                        s_axis_tvalid,
    output logic                        s_axis_tready,
    output logic [PE*OUT_BITS-1:0]      m_axis_tdata,
    output logic                        m_axis_tvalid,
    input  logic                        m_axis_tready
);
    localparam int SF = K / SIMD;
    localparam int NF = C / PE;
    localparam int IW = SIMD * PE * IN_BITS;           // input beat
    localparam int WW = PE * SIMD * W_BITS;            // one weight ROM word
    localparam int SFB = SF > 1 ? $clog2(SF) : 1;
    localparam int NFB = NF > 1 ? $clog2(NF) : 1;
    localparam int WAB = NF * SF > 1 ? $clog2(NF * SF) : 1;

    // ---------------------------------------------------------------- parameter checks (elaboration time)
    initial begin
        if (K % SIMD != 0 || C % PE != 0) $fatal(1, "qdet_vvau: SIMD must divide K and PE must divide C");
        if (STEPS == 0 && OUT_BITS != ACC_BITS) $fatal(1, "qdet_vvau: OUT_BITS must equal ACC_BITS when STEPS = 0");
        if (MAC_STYLE != "lut" && MAC_STYLE != "dsp") $fatal(1, "qdet_vvau: MAC_STYLE must be \"lut\" or \"dsp\"");
    end


    // ---------------------------------------------------------------- pipeline state
    logic           en;          // the whole pipeline advances
    logic           fire;        // S0 takes an input beat
    logic [SFB-1:0] sf;
    logic [NFB-1:0] nf;
    logic [WAB-1:0] waddr;

    logic           v1, first1, last1;
    logic [NFB-1:0] nf1;
    logic [IW-1:0]  in1;
    logic [WW-1:0]  w1;


    // The weights, in the memory style the folder chose (qdet_rom), read through its register under the enable
    // (a read issued just before a stall is held, not lost). Its output is the S1 weight register w1.
    qdet_rom #(.WIDTH(WW), .DEPTH(NF * SF), .FILE(W_FILE), .STYLE(RAM_STYLE)) u_weights (
        .clk(ap_clk), .en(en), .addr(waddr), .data(w1)
    );

    assign fire = en && s_axis_tvalid;
    assign s_axis_tready = en;

    // ---------------------------------------------------------------- S0
    // Fold counters and the beat's S1 control (qdet_foldcnt, shared with the other MAC kernel). The counters
    // advance per accepted beat only, so an idle input just leaves bubbles in the pipeline.
    qdet_foldcnt #(.SF(SF), .NF(NF)) u_count (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .en(en), .fire(fire), .sf(sf), .nf(nf), .waddr(waddr), .v1(v1),
        .first1(first1), .last1(last1), .nf1(nf1)
    );

    always_ff @(posedge ap_clk) begin
        if (en) in1 <= s_axis_tdata;
    end

    // ---------------------------------------------------------------- S1-S3: dots, accumulation, thresholds
    // The input beat is window-position major (lane s*PE + p), the weight word PE major (lane p*SIMD + s): PE p's
    // SIMD inputs are gathered by wiring alone.
    wire [PE*SIMD*IN_BITS-1:0] xg;
    for (genvar p = 0; p < PE; p = p + 1) begin : g_pe
        for (genvar s = 0; s < SIMD; s = s + 1) begin : g_lane
            assign xg[(p*SIMD + s)*IN_BITS +: IN_BITS] = in1[(s*PE + p)*IN_BITS +: IN_BITS];
        end
    end

    qdet_mac #(.PE(PE), .SIMD(SIMD), .IN_BITS(IN_BITS), .IN_SIGNED(IN_SIGNED), .W_BITS(W_BITS), .ACC_BITS(ACC_BITS),
               .STEPS(STEPS), .OUT_BITS(OUT_BITS), .ACT_BIAS(ACT_BIAS), .NF(NF), .T_FILE(T_FILE),
               .MAC_STYLE(MAC_STYLE), .TREE_LEVELS(TREE_LEVELS)) u_mac (
        .ap_clk(ap_clk),
        .ap_rst_n(ap_rst_n),
        .en(en),
        .v1(v1),
        .first1(first1),
        .last1(last1),
        .nf1(nf1),
        .x1(xg),
        .w1(w1),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );
endmodule
