// qdet_thresholding: FINN's standalone multi-threshold activation (Thresholding), PE channels per beat.
//
// out[c] = ACT_BIAS + #{k : x[c] >= T[c][k]} in OUT_BITS two's complement, for C channels streamed channel fastest,
// CF = C/PE beats per pixel. Thresholds are stored in IN_BITS+1 bits with the input's signedness, which holds every
// threshold that matters for an IN_BITS input once clipped to [min_in, max_in + 1] (hls/rtl/README.md, T_FILE).
//
// Pipeline, one global enable:
//   S0  input beat accepted; threshold ROM read at the channel fold (registered, qdet_mt)
//   S1  comparisons (combinational) into the output skid (qdet_mt)
// The enable stalls only while S1 holds a result the skid cannot take; the skid's s_axis_tready is a register,
// so s_axis_tready here never depends combinationally on m_axis_tready. The ROM read register sits under the same
// enable, so a read issued before a stall is held while the pipeline waits. One beat per cycle when unstalled.
module qdet_thresholding #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int IN_BITS = 8,
    parameter int IN_SIGNED = 0,
    parameter int STEPS = 15,
    parameter int OUT_BITS = 4,
    parameter int ACT_BIAS = 0,
    parameter T_FILE = ""
) (
    input  logic                    ap_clk,
    input  logic                    ap_rst_n,
    input  logic [PE*IN_BITS-1:0]   s_axis_tdata,
    input  logic                    s_axis_tvalid,
    output logic                    s_axis_tready,
    output logic [PE*OUT_BITS-1:0]  m_axis_tdata,
    output logic                    m_axis_tvalid,
    input  logic                    m_axis_tready
);
    localparam int CF = C / PE;
    localparam int TB = IN_BITS + 1;                // one threshold
    localparam int CFB = CF > 1 ? $clog2(CF) : 1;

    initial begin
        if (C % PE != 0) $fatal(1, "qdet_thresholding: PE must divide C");
        if (STEPS < 1) $fatal(1, "qdet_thresholding: STEPS must be at least 1");
    end

    logic                  en;
    logic [CFB-1:0]        cf;
    logic                  v1;
    logic [PE*IN_BITS-1:0] x1;
    logic                  skid_ready;

    assign en = !v1 || skid_ready;
    assign s_axis_tready = en;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            cf <= '0;
            v1 <= 1'b0;
        end else if (en) begin
            v1 <= s_axis_tvalid;
            if (s_axis_tvalid) cf <= cf == CFB'(CF - 1) ? '0 : cf + 1'b1;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (en) x1 <= s_axis_tdata;
    end

    // Threshold row cf is read (qdet_mt, under the enable) as beat cf is registered; the input and its IN_BITS+1
    // bit thresholds, both with the input's signedness, compare exactly.
    qdet_mt #(.PE(PE), .V_BITS(IN_BITS), .T_BITS(TB), .SIGNED(IN_SIGNED), .STEPS(STEPS), .OUT_BITS(OUT_BITS),
              .ACT_BIAS(ACT_BIAS), .DEPTH(CF), .T_FILE(T_FILE)) u_act (
        .ap_clk(ap_clk),
        .ap_rst_n(ap_rst_n),
        .en(en),
        .t_addr(cf),
        .v(x1),
        .v_valid(v1),
        .v_ready(skid_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );
endmodule
