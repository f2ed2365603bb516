// qdet_accpool: FINN GlobalAccPool, the per-channel sum over all PIXELS pixels of a frame (a GlobalAveragePool
// without its division, which FINN leaves to a scalar Mul after the node).
//
// Input: NHWC, channel fastest: per pixel CF = C/PE beats, beat f holding channels f*PE .. f*PE+PE-1. Output: one
// pixel per frame, CF beats of PE sums in OUT_BITS each (FINN's output datatype, the smallest integer type holding
// PIXELS times the input's extreme value): the sum in two's complement, truncated or sign/zero-extended to
// OUT_BITS. Frames stream back to back.
//
// The running sums of a fold live in a CF-entry memory of PE*ACC bits (not C registers). Its read is registered
// and issued one beat ahead: while beat (p, f) is summed and written back to entry f, entry f+1 is read for the
// next beat, a different address (CF >= 2), written at least one cycle earlier. CF = 1 keeps the single entry in
// a register. The last pixel's sums go straight into a qdet_skid on the output (qdet_poolctl, no read-out pass),
// so a frame takes PIXELS*CF input cycles plus the skid's latency, at full rate one input beat per cycle.
module qdet_accpool #(
    parameter int C        = 1,
    parameter int PE       = 1,
    parameter int PIXELS   = 4,
    parameter int IN_BITS  = 4,
    parameter int SIGNED   = 0,
    parameter int OUT_BITS = 6
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
    localparam int CF  = C / PE;
    localparam int FW  = (CF > 1) ? $clog2(CF) : 1;
    // PIXELS values of IN_BITS sum into IN_BITS + ceil(log2 PIXELS) bits; a wider OUT_BITS is just extension.
    localparam int SUM = IN_BITS + $clog2(PIXELS);
    localparam int ACC = (SUM > OUT_BITS) ? SUM : OUT_BITS;

    initial if (C % PE != 0 || PIXELS < 1 || OUT_BITS < 1)
        $fatal(1, "qdet_accpool: PE must divide C; PIXELS and OUT_BITS must be >= 1");

    /* verilator lint_off UNUSEDSIGNAL */  // CF = 1 keeps its one entry in a register: no fold address
    logic [FW-1:0]          f;       // channel fold of the next input beat
    logic [FW-1:0]          f_next;  // the fold after it
    /* verilator lint_on UNUSEDSIGNAL */
    logic [PE*ACC-1:0]      rd;      // running sums of fold f (from the memory, read one beat ahead)
    logic [PE*ACC-1:0]      sum;     // running sums including the current input beat
    logic [PE*OUT_BITS-1:0] res;
    logic                   first, take;

    // The fold and pixel counters and the output skid: only the frame's last pixel waits for the skid.
    qdet_poolctl #(.FOLDS(CF), .SPAN(PIXELS), .WIDTH(PE * OUT_BITS)) u_ctl (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready), .take(take),
        .fold(f), .fold_next(f_next), .first(first), .res(res),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

    for (genvar l = 0; l < PE; l++) begin : g_lane
        logic [ACC-1:0] x, prev, s;
        if (SIGNED != 0) begin : g_s
            assign x = ACC'($signed(s_axis_tdata[l*IN_BITS +: IN_BITS]));
        end else begin : g_u
            assign x = ACC'(s_axis_tdata[l*IN_BITS +: IN_BITS]);
        end
        // Pixel 0 starts the frame's sums: whatever the memory holds from the previous frame is not added.
        assign prev = first ? '0 : rd[l*ACC +: ACC];
        assign s = prev + x;
        assign sum[l*ACC +: ACC] = s;
        assign res[l*OUT_BITS +: OUT_BITS] = s[OUT_BITS-1:0];
    end

    if (CF == 1) begin : g_reg
        always_ff @(posedge ap_clk) begin
            if (take) rd <= sum;
        end
    end else begin : g_mem
        // Simple dual-port RAM: write port at fold f, registered read port at the next fold (never the same
        // address), both under the input handshake, so a stalled beat keeps its prefetched sums.
        logic [PE*ACC-1:0] mem [CF];
        always_ff @(posedge ap_clk) begin
            if (take) begin
                mem[f] <= sum;
                rd     <= mem[f_next];
            end
        end
    end
endmodule
