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
//   S1  PE dot products of SIMD products each (qdet_dot; TREE_LEVELS > 0 pipelines the products and tree)
//   S2  accumulate; threshold ROM read (registered, qdet_mt)
//   S3  acc holds a finished channel group: thresholds compared (combinational) into the output skid (qdet_mt)
// S1-S3 are qdet_mac, shared with qdet_vvau.
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
    parameter RAM_STYLE = "auto",
    // Adder-tree levels per pipeline stage in the dot products (qdet_dot; 0: one combinational stage).
    parameter int TREE_LEVELS = 0,
    // MAC_STYLE "dsp": products per DSP multiplier (qdet_packdot; W_FILE then holds packed words, see the README).
    parameter int DSP_LANES = 1,
    // MAC_STYLE "dsp": 1 when no weight is -2^(W_BITS-1) (narrow range): the packed words are a bit narrower.
    parameter int W_NARROW = 0
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
    localparam int LANES = MAC_STYLE == "dsp" ? DSP_LANES : 0;  // qdet_mac's: 0 = a LUT dot per PE
    localparam int PW = (DSP_LANES - 1) * (IN_BITS + W_BITS - 1) + W_BITS + (DSP_LANES > 1 && W_NARROW == 0 ? 1 : 0);
    localparam int WW = LANES > 0 ? ((PE + LANES - 1) / LANES) * SIMD * PW : PE * SIMD * W_BITS;  // a weight word
    localparam int SFB = SF > 1 ? $clog2(SF) : 1;
    localparam int NFB = NF > 1 ? $clog2(NF) : 1;
    localparam int WAB = NF * SF > 1 ? $clog2(NF * SF) : 1;

    // ---------------------------------------------------------------- parameter checks (elaboration time)
    initial begin
        if (MW % SIMD != 0 || MH % PE != 0) $fatal(1, "qdet_mvau: SIMD must divide MW and PE must divide MH");
        if (STEPS == 0 && OUT_BITS != ACC_BITS) $fatal(1, "qdet_mvau: OUT_BITS must equal ACC_BITS when STEPS = 0");
        if (MAC_STYLE != "lut" && MAC_STYLE != "dsp") $fatal(1, "qdet_mvau: MAC_STYLE must be \"lut\" or \"dsp\"");
        if (DSP_LANES < 1 || DSP_LANES > PE) $fatal(1, "qdet_mvau: DSP_LANES must be in 1..PE");
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


    // The weights, in the memory style the folder chose (qdet_rom), read through its register under the enable
    // (a read issued just before a stall is held, not lost). Its output is the S1 weight register w1.
    qdet_rom #(.WIDTH(WW), .DEPTH(NF * SF), .FILE(W_FILE), .STYLE(RAM_STYLE)) u_weights (
        .clk(ap_clk), .en(en), .addr(waddr), .data(w1)
    );

    assign fire = en && (nf != 0 || s_axis_tvalid);
    assign s_axis_tready = en && nf == 0;

    // ---------------------------------------------------------------- S0
    // Fold counters and the beat's S1 control (qdet_foldcnt, shared with the other MAC kernel).
    qdet_foldcnt #(.SF(SF), .NF(NF)) u_count (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .en(en), .fire(fire), .sf(sf), .nf(nf), .waddr(waddr), .v1(v1),
        .first1(first1), .last1(last1), .nf1(nf1)
    );

    always_ff @(posedge ap_clk) begin
        if (en) begin
            buf1    <= ibuf[sf];
            in1     <= s_axis_tdata;
            use_in1 <= nf == '0;
        end
        if (fire && nf == '0) ibuf[sf] <= s_axis_tdata;
    end

    // ---------------------------------------------------------------- S1-S3: dots, accumulation, thresholds
    // Every PE multiplies the same input vector, each with its own weights (qdet_mac).
    assign x1 = use_in1 ? in1 : buf1;

    qdet_mac #(.PE(PE), .SIMD(SIMD), .IN_BITS(IN_BITS), .IN_SIGNED(IN_SIGNED), .W_BITS(W_BITS), .ACC_BITS(ACC_BITS),
               .STEPS(STEPS), .OUT_BITS(OUT_BITS), .ACT_BIAS(ACT_BIAS), .NF(NF), .T_FILE(T_FILE),
               .MAC_STYLE(MAC_STYLE), .TREE_LEVELS(TREE_LEVELS), .LANES(LANES), .W_NARROW(W_NARROW), .WW(WW)) u_mac (
        .ap_clk(ap_clk),
        .ap_rst_n(ap_rst_n),
        .en(en),
        .v1(v1),
        .first1(first1),
        .last1(last1),
        .nf1(nf1),
        .x1({PE{x1}}),
        .w1(w1),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );
endmodule
