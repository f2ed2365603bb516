// qdet_fork: one AXI-Stream in, N copies out (FINN DuplicateStreams).
//
// Every input beat goes to each of the N outputs exactly once; the outputs take it independently, on the same
// cycle or on different ones. The beat waits in the output register of a qdet_skid (which gives the input its
// registered ready); `taken[i]` records which outputs have already had it, and the skid lets the next beat in as
// soon as the last output that still needs this one takes it. m_axis_tvalid[i] = "skid holds a beat that output i
// has not taken", a function of registers only; all outputs share the skid's data register. With every output
// ready the fork passes one beat per cycle.
module qdet_fork #(
    parameter int N     = 2,
    parameter int WIDTH = 8
) (
    input  logic               ap_clk,
    input  logic               ap_rst_n,
    input  logic [WIDTH-1:0]   s_axis_tdata,
    input  logic               s_axis_tvalid,
    output logic               s_axis_tready,
    output logic [N*WIDTH-1:0] m_axis_tdata,
    output logic [N-1:0]       m_axis_tvalid,
    input  logic [N-1:0]       m_axis_tready
);
    initial if (N < 2) $fatal(1, "qdet_fork: N must be >= 2");

    logic [WIDTH-1:0] b_data;
    logic             b_valid, b_ready;
    logic [N-1:0]     taken;    // outputs that have taken the beat in the skid's output register

    qdet_skid #(.WIDTH(WIDTH)) u_skid (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
        .m_axis_tdata(b_data), .m_axis_tvalid(b_valid), .m_axis_tready(b_ready)
    );

    assign m_axis_tdata  = {N{b_data}};
    assign m_axis_tvalid = b_valid ? ~taken : '0;
    // The beat is done when every output has taken it before or takes it now.
    assign b_ready = &(taken | m_axis_tready);

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            taken <= '0;
        end else if (b_valid) begin
            taken <= b_ready ? '0 : taken | m_axis_tready;
        end
    end
endmodule
