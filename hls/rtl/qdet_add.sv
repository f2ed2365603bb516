// qdet_add: element-wise sum of two AXI-Streams (FINN ElementwiseAdd, both operands streamed, equal shapes).
//
// Beat k of the output holds, per lane p, lhs[p] + rhs[p] of input beats k: each operand sign- (LHS_SIGNED /
// RHS_SIGNED) or zero-extended, the sum's low OUT_BITS bits emitted (exact when OUT_BITS holds every sum, which
// the generator's view checks). Each input passes a qdet_skid, so both s0_axis_tready and s1_axis_tready are
// registered (they depend neither on m_axis_tready nor on the other input's tvalid); the sum is registered into
// m_axis_tdata when both skids hold a beat and the output register is free or being emptied. One beat per cycle
// when both inputs are valid and the output is ready; latency 2 cycles (skid, output register).
module qdet_add #(
    parameter int PE         = 1,
    parameter int LHS_BITS   = 4,
    parameter int LHS_SIGNED = 0,
    parameter int RHS_BITS   = 4,
    parameter int RHS_SIGNED = 0,
    parameter int OUT_BITS   = 5,
    // OUT_SIGNED only documents the output type: the low OUT_BITS bits of the exact sum are the same bits either way.
    /* verilator lint_off UNUSEDPARAM */
    parameter int OUT_SIGNED = 0
    /* verilator lint_on UNUSEDPARAM */
) (
    input  logic                   ap_clk,
    input  logic                   ap_rst_n,
    input  logic [PE*LHS_BITS-1:0] s0_axis_tdata,
    input  logic                   s0_axis_tvalid,
    output logic                   s0_axis_tready,
    input  logic [PE*RHS_BITS-1:0] s1_axis_tdata,
    input  logic                   s1_axis_tvalid,
    output logic                   s1_axis_tready,
    output logic [PE*OUT_BITS-1:0] m_axis_tdata,
    output logic                   m_axis_tvalid,
    input  logic                   m_axis_tready
);
    // Both operands are extended to EW bits (wider than each operand and the output), summed, and truncated.
    localparam int MAXIN = (LHS_BITS > RHS_BITS) ? LHS_BITS : RHS_BITS;
    localparam int EW    = ((MAXIN > OUT_BITS) ? MAXIN : OUT_BITS) + 1;

    logic [PE*LHS_BITS-1:0] a_data;
    logic [PE*RHS_BITS-1:0] b_data;
    logic                   a_valid, b_valid, fire;
    logic [PE*OUT_BITS-1:0] sum;

    qdet_skid #(.WIDTH(PE*LHS_BITS)) u_lhs (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tdata(s0_axis_tdata), .s_axis_tvalid(s0_axis_tvalid), .s_axis_tready(s0_axis_tready),
        .m_axis_tdata(a_data), .m_axis_tvalid(a_valid), .m_axis_tready(fire)
    );
    qdet_skid #(.WIDTH(PE*RHS_BITS)) u_rhs (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tdata(s1_axis_tdata), .s_axis_tvalid(s1_axis_tvalid), .s_axis_tready(s1_axis_tready),
        .m_axis_tdata(b_data), .m_axis_tvalid(b_valid), .m_axis_tready(fire)
    );

    assign fire = a_valid && b_valid && (!m_axis_tvalid || m_axis_tready);

    for (genvar p = 0; p < PE; p++) begin : g_lane
        logic [LHS_BITS-1:0] a;
        logic [RHS_BITS-1:0] b;
        /* verilator lint_off UNUSEDSIGNAL */  // only the sum's low OUT_BITS bits leave
        logic [EW-1:0]       ax, bx, s;
        /* verilator lint_on UNUSEDSIGNAL */
        assign a  = a_data[p*LHS_BITS +: LHS_BITS];
        assign b  = b_data[p*RHS_BITS +: RHS_BITS];
        assign ax = {{(EW - LHS_BITS){LHS_SIGNED != 0 && a[LHS_BITS-1]}}, a};
        assign bx = {{(EW - RHS_BITS){RHS_SIGNED != 0 && b[RHS_BITS-1]}}, b};
        assign s  = ax + bx;
        assign sum[p*OUT_BITS +: OUT_BITS] = s[OUT_BITS-1:0];
    end

    always_ff @(posedge ap_clk) begin
        if (fire) m_axis_tdata <= sum;
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            m_axis_tvalid <= 1'b0;
        end else if (fire) begin
            m_axis_tvalid <= 1'b1;
        end else if (m_axis_tready) begin
            m_axis_tvalid <= 1'b0;
        end
    end
endmodule
