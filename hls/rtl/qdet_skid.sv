// qdet_skid: a two-entry AXI-Stream register slice.
//
// Full throughput (one beat per cycle) with registered outputs on both sides: m_axis_tvalid/tdata come from flops
// and s_axis_tready depends only on this slice's own state, never combinationally on m_axis_tready. Kernels put one
// on their output so that a chain of kernels has no ready path longer than one stage.
module qdet_skid #(
    parameter int WIDTH = 8
) (
    input  logic             ap_clk,
    input  logic             ap_rst_n,
    input  logic [WIDTH-1:0] s_axis_tdata,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    output logic [WIDTH-1:0] m_axis_tdata,
    output logic             m_axis_tvalid,
    input  logic             m_axis_tready
);
    // Main register (what the consumer sees) and a spare that catches the beat accepted in the cycle the consumer
    // stalled: s_axis_tready is "spare empty", a registered condition.
    logic [WIDTH-1:0] spare;
    logic             spare_valid;

    assign s_axis_tready = !spare_valid;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            m_axis_tvalid <= 1'b0;
            spare_valid   <= 1'b0;
        end else begin
            if (!m_axis_tvalid || m_axis_tready) begin
                // The main register is free this cycle: refill from the spare first (it is older), else the input.
                if (spare_valid) begin
                    m_axis_tdata  <= spare;
                    m_axis_tvalid <= 1'b1;
                    spare_valid   <= 1'b0;
                end else begin
                    m_axis_tdata  <= s_axis_tdata;
                    m_axis_tvalid <= s_axis_tvalid;
                end
            end else if (s_axis_tvalid && s_axis_tready) begin
                spare       <= s_axis_tdata;
                spare_valid <= 1'b1;
            end
        end
    end
endmodule
