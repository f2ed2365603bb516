// qdet_fmpad: FINN FMPadding. Pads an (IMG_H, IMG_W, C) NHWC image streamed SIMD channels per beat with zeros:
// PAD_T rows on top, PAD_B at the bottom, PAD_L columns on the left, PAD_R on the right (FINN's `Padding`
// attribute is [PAD_T, PAD_L, PAD_B, PAD_R]). Output (IMG_H+PAD_T+PAD_B, IMG_W+PAD_L+PAD_R, C), same folding.
//
// Counters walk the output (row, column, channel fold); an output beat is either the next input beat (interior)
// or zero (border). A frame's leading border beats wait until its first input beat is offered (not taken), so
// the kernel emits nothing of a frame that has not started: after the last frame it goes quiet instead of running
// ahead into the next frame's top border. A qdet_skid on the output registers tvalid/tdata, and its registered ready keeps
// s_axis_tready free of m_axis_tready. One output beat per cycle when both sides are ready.
module qdet_fmpad #(
    parameter int IMG_H = 4,
    parameter int IMG_W = 4,
    parameter int C     = 1,
    parameter int SIMD  = 1,
    parameter int BITS  = 8,
    parameter int PAD_T = 1,
    parameter int PAD_L = 1,
    parameter int PAD_B = 1,
    parameter int PAD_R = 1
) (
    input  logic                 ap_clk,
    input  logic                 ap_rst_n,
    input  logic [SIMD*BITS-1:0] s_axis_tdata,
    input  logic                 s_axis_tvalid,
    output logic                 s_axis_tready,
    output logic [SIMD*BITS-1:0] m_axis_tdata,
    output logic                 m_axis_tvalid,
    input  logic                 m_axis_tready
);
    localparam int W    = SIMD * BITS;
    localparam int FOLD = C / SIMD;
    localparam int OH   = IMG_H + PAD_T + PAD_B;
    localparam int OW   = IMG_W + PAD_L + PAD_R;
    localparam int YW   = $clog2(OH + 1);
    localparam int XW   = $clog2(OW + 1);
    localparam int FW   = (FOLD > 1) ? $clog2(FOLD) : 1;

    initial if (C % SIMD != 0) $fatal(1, "qdet_fmpad: SIMD must divide C");

    logic [YW-1:0] y;
    logic [XW-1:0] x;
    logic [FW-1:0] f;
    logic          border, started, c_valid, c_ready, c_fire, frame_end;
    logic [W-1:0]  c_data;

    // With a zero pad the `<` tests are constant false: intended.
    /* verilator lint_off UNSIGNED */
    assign border = (y < YW'(PAD_T)) || (y >= YW'(PAD_T + IMG_H)) || (x < XW'(PAD_L)) || (x >= XW'(PAD_L + IMG_W));
    /* verilator lint_on UNSIGNED */
    assign c_valid = (border && started) || s_axis_tvalid;
    assign c_data  = border ? '0 : s_axis_tdata;
    // c_ready is the skid's registered ready.
    assign s_axis_tready = !border && c_ready;
    assign c_fire = c_valid && c_ready;
    assign frame_end = (y == YW'(OH - 1)) && (x == XW'(OW - 1)) && (f == FW'(FOLD - 1));

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            y <= '0;
            x <= '0;
            f <= '0;
            started <= 1'b0;
        end else if (c_fire) begin
            started <= !frame_end;
            if (f != FW'(FOLD - 1)) begin
                f <= f + 1'b1;
            end else begin
                f <= '0;
                if (x != XW'(OW - 1)) begin
                    x <= x + 1'b1;
                end else begin
                    x <= '0;
                    y <= (y == YW'(OH - 1)) ? '0 : y + 1'b1;
                end
            end
        end
    end

    qdet_skid #(.WIDTH(W)) u_skid (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tdata(c_data), .s_axis_tvalid(c_valid), .s_axis_tready(c_ready),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );
endmodule
