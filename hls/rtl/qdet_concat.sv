// qdet_concat: channel concatenation of two NHWC AXI-Streams (FINN StreamingConcat with two inputs).
//
// Per pixel the output is F0 = C0/SIMD beats taken from s0, then F1 = C1/SIMD beats taken from s1, each element
// sign- (IN*_SIGNED) or zero-extended to OUT_BITS. A beat counter over the F0+F1 beats of a pixel selects the
// input; the selected beat goes into a qdet_skid on the output. s0_axis_tready = "counter in the s0 part and the
// skid has room", s1_axis_tready likewise: registered state only (not m_axis_tready, nor the other input's
// tvalid). The unselected input is never ready. One output beat per cycle when the selected input is valid and
// the output ready.
module qdet_concat #(
    parameter int C0         = 1,
    parameter int C1         = 1,
    parameter int SIMD       = 1,
    parameter int IN0_BITS   = 4,
    parameter int IN0_SIGNED = 0,
    parameter int IN1_BITS   = 4,
    parameter int IN1_SIGNED = 0,
    parameter int OUT_BITS   = 4
) (
    input  logic                     ap_clk,
    input  logic                     ap_rst_n,
    input  logic [SIMD*IN0_BITS-1:0] s0_axis_tdata,
    input  logic                     s0_axis_tvalid,
    output logic                     s0_axis_tready,
    input  logic [SIMD*IN1_BITS-1:0] s1_axis_tdata,
    input  logic                     s1_axis_tvalid,
    output logic                     s1_axis_tready,
    output logic [SIMD*OUT_BITS-1:0] m_axis_tdata,
    output logic                     m_axis_tvalid,
    input  logic                     m_axis_tready
);
    initial if (C0 % SIMD != 0 || C1 % SIMD != 0) $fatal(1, "qdet_concat: SIMD must divide C0 and C1");

    localparam int F0 = C0 / SIMD;
    localparam int F  = F0 + C1 / SIMD;            // output beats per pixel
    localparam int CW = $clog2(F);                 // F >= 2
    // Elements are extended to EW bits (wider than every input and the output), then truncated to OUT_BITS.
    localparam int MAXIN = (IN0_BITS > IN1_BITS) ? IN0_BITS : IN1_BITS;
    localparam int EW    = ((MAXIN > OUT_BITS) ? MAXIN : OUT_BITS) + 1;

    logic [CW-1:0]            cnt;                 // beat of the pixel; s1's part is cnt >= F0
    logic                     sel1, c_valid, c_ready;
    logic [SIMD*OUT_BITS-1:0] c_data0, c_data1;

    assign sel1           = (cnt >= CW'(F0));
    assign s0_axis_tready = !sel1 && c_ready;      // c_ready is the skid's registered ready
    assign s1_axis_tready = sel1 && c_ready;
    assign c_valid        = sel1 ? s1_axis_tvalid : s0_axis_tvalid;

    for (genvar s = 0; s < SIMD; s++) begin : g_lane
        logic [IN0_BITS-1:0] a;
        logic [IN1_BITS-1:0] b;
        /* verilator lint_off UNUSEDSIGNAL */  // only the low OUT_BITS bits leave
        logic [EW-1:0]       ax, bx;
        /* verilator lint_on UNUSEDSIGNAL */
        assign a  = s0_axis_tdata[s*IN0_BITS +: IN0_BITS];
        assign b  = s1_axis_tdata[s*IN1_BITS +: IN1_BITS];
        assign ax = {{(EW - IN0_BITS){IN0_SIGNED != 0 && a[IN0_BITS-1]}}, a};
        assign bx = {{(EW - IN1_BITS){IN1_SIGNED != 0 && b[IN1_BITS-1]}}, b};
        assign c_data0[s*OUT_BITS +: OUT_BITS] = ax[OUT_BITS-1:0];
        assign c_data1[s*OUT_BITS +: OUT_BITS] = bx[OUT_BITS-1:0];
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            cnt <= '0;
        end else if (c_valid && c_ready) begin
            cnt <= (cnt == CW'(F - 1)) ? '0 : cnt + 1'b1;
        end
    end

    qdet_skid #(.WIDTH(SIMD*OUT_BITS)) u_skid (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tdata(sel1 ? c_data1 : c_data0), .s_axis_tvalid(c_valid), .s_axis_tready(c_ready),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );
endmodule
