// qdet_maxpool: FINN Pool with Function=MaxPool, fed by the depthwise sliding-window stream.
//
// Input per output pixel: for each channel fold f = 0..C/PE-1, K beats (the window positions, row-major), each
// holding channels f*PE .. f*PE+PE-1 (FINN's depthwise SWG order (C/PE, K_H, K_W, PE)). Output: one beat per fold
// with the PE element-wise maxima. The stream is the same for every output pixel, so OUT_PIXELS (the number of
// output pixels per frame, kept for the generator and cycle estimates) does not change the logic.
//
// A running maximum over the window's first K-1 beats; the K-th beat's maximum goes straight into a qdet_skid on
// the output (qdet_poolctl), whose registered ready keeps s_axis_tready free of m_axis_tready. One input beat per
// cycle.
module qdet_maxpool #(
    parameter int C          = 1,
    parameter int PE         = 1,
    parameter int K          = 4,
    parameter int BITS       = 8,
    parameter int SIGNED     = 0,
    parameter int OUT_PIXELS = 1
) (
    input  logic               ap_clk,
    input  logic               ap_rst_n,
    input  logic [PE*BITS-1:0] s_axis_tdata,
    input  logic               s_axis_tvalid,
    output logic               s_axis_tready,
    output logic [PE*BITS-1:0] m_axis_tdata,
    output logic               m_axis_tvalid,
    input  logic               m_axis_tready
);
    localparam int W  = PE * BITS;

    initial if (C % PE != 0 || K < 1 || OUT_PIXELS < 1)
        $fatal(1, "qdet_maxpool: PE must divide C, K and OUT_PIXELS must be >= 1");

    logic [W-1:0]  run;             // running maximum over the window's positions so far
    logic [W-1:0]  mx;              // maximum including the current input beat
    logic          first, take;

    // Element-wise maximum of the input beat and the running maximum (the input alone at position 0).
    for (genvar p = 0; p < PE; p++) begin : g_lane
        logic [BITS-1:0] a, b;
        logic            a_gt;
        assign a = s_axis_tdata[p*BITS +: BITS];
        assign b = run[p*BITS +: BITS];
        if (SIGNED != 0) begin : g_s
            assign a_gt = $signed(a) > $signed(b);
        end else begin : g_u
            assign a_gt = a > b;
        end
        assign mx[p*BITS +: BITS] = (first || a_gt) ? a : b;
    end

    always_ff @(posedge ap_clk) begin
        if (take) run <= mx;
    end

    // The window counter and the output skid (one fold per window: FOLDS = 1, the fold outputs stay unused).
    /* verilator lint_off UNUSEDSIGNAL */
    logic fold, fold_next;
    /* verilator lint_on UNUSEDSIGNAL */
    qdet_poolctl #(.FOLDS(1), .SPAN(K), .WIDTH(W)) u_ctl (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready), .take(take),
        .fold(fold), .fold_next(fold_next), .first(first), .res(mx),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );
endmodule
