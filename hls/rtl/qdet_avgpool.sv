// qdet_avgpool: FINN Pool with Function=QuantAvgPool (window sum, then right shift) or AccPool (SHIFT = 0 and
// OUT_BITS wide enough: the plain window sum), fed by the depthwise sliding-window stream.
//
// Input per output pixel: for each channel fold f = 0..C/PE-1, K beats (the window positions, row-major), each
// holding channels f*PE .. f*PE+PE-1 (FINN's depthwise SWG order (C/PE, K_H, K_W, PE)), as for qdet_maxpool.
// Output: one beat per fold with the PE values (sum >> SHIFT) in OUT_BITS each: an arithmetic shift when SIGNED
// (FINN's np.right_shift on a signed sum, i.e. floor division by 2^SHIFT), then the low OUT_BITS bits (the HLS cast
// to the output type; wider outputs are sign- or zero-extended). SHIFT is FINN's rule, computed by the generator
// (hls/gen/pool.py): max(0, bitlen((2^IN_BITS - 1) * K) - OUT_BITS) for QuantAvgPool, 0 for AccPool.
//
// A running sum over the window's first K-1 beats; the K-th beat's sum goes straight into a qdet_skid on the
// output (qdet_poolctl), whose registered ready keeps s_axis_tready free of m_axis_tready. One input beat per cycle, any K.
module qdet_avgpool #(
    parameter int C          = 1,
    parameter int PE         = 1,
    parameter int K          = 4,
    parameter int IN_BITS    = 4,
    parameter int SIGNED     = 0,
    parameter int OUT_BITS   = 4,
    parameter int SHIFT      = 0,
    parameter int OUT_PIXELS = 1
) (
    input  logic                   ap_clk,
    input  logic                   ap_rst_n,
    input  logic [PE*IN_BITS-1:0]  s_axis_tdata,
    input  logic                   s_axis_tvalid,
    output logic                   s_axis_tready,
    output logic [PE*OUT_BITS-1:0] m_axis_tdata,
    output logic                   m_axis_tvalid,
    input  logic                   m_axis_tready
);
    // The sum of K values of IN_BITS needs IN_BITS + ceil(log2 K) bits (signed or not). The extra OUT_BITS + SHIFT
    // term only matters when the output is wider than the sum: the shifted sum is then sign/zero-extended for free.
    localparam int SUM = IN_BITS + $clog2(K);
    localparam int ACC = (SUM > OUT_BITS + SHIFT) ? SUM : OUT_BITS + SHIFT;

    initial if (C % PE != 0 || K < 1 || OUT_PIXELS < 1 || SHIFT < 0 || OUT_BITS < 1)
        $fatal(1, "qdet_avgpool: PE must divide C; K, OUT_PIXELS, OUT_BITS must be >= 1, SHIFT >= 0");

    logic [PE*ACC-1:0]     run;     // running sum over the window's positions so far
    logic [PE*ACC-1:0]     sum;     // sum including the current input beat
    logic [PE*OUT_BITS-1:0] res;    // shifted, truncated window result (valid at the last position)
    logic                  first, take;

    for (genvar p = 0; p < PE; p++) begin : g_lane
        logic [ACC-1:0] x, prev, s;
        // The input element widened to the accumulator: sign-extended when SIGNED.
        if (SIGNED != 0) begin : g_s
            assign x = ACC'($signed(s_axis_tdata[p*IN_BITS +: IN_BITS]));
            assign res[p*OUT_BITS +: OUT_BITS] = OUT_BITS'($signed(s) >>> SHIFT);
        end else begin : g_u
            assign x = ACC'(s_axis_tdata[p*IN_BITS +: IN_BITS]);
            assign res[p*OUT_BITS +: OUT_BITS] = OUT_BITS'(s >> SHIFT);
        end
        // Position 0 starts a new window: the previous window's sum is not added.
        assign prev = first ? '0 : run[p*ACC +: ACC];
        assign s = prev + x;
        assign sum[p*ACC +: ACC] = s;
    end

    always_ff @(posedge ap_clk) begin
        if (take) run <= sum;
    end

    // The window counter and the output skid (one fold per window: FOLDS = 1, the fold outputs stay unused).
    /* verilator lint_off UNUSEDSIGNAL */
    logic fold, fold_next;
    /* verilator lint_on UNUSEDSIGNAL */
    qdet_poolctl #(.FOLDS(1), .SPAN(K), .WIDTH(PE * OUT_BITS)) u_ctl (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready), .take(take),
        .fold(fold), .fold_next(fold_next), .first(first), .res(res),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );
endmodule
