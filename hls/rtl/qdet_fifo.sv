// qdet_fifo: an AXI-Stream FIFO holding exactly DEPTH beats.
//
// DEPTH = 2 is a qdet_skid. For DEPTH >= 3 the FIFO is a memory array of DEPTH-1 entries with read/write pointers
// plus the output register, which is the memory's synchronous read register (with a read enable): that is the
// pattern synthesis maps to LUTRAM or BRAM (with its output register), so deep FIFOs cost no flops per entry.
// m_axis_tvalid/tdata come from flops, and s_axis_tready is "memory not full", a function of registered state
// only. Pointers never address the same entry for a read and a write in one cycle (a read needs a stored entry,
// a write a free one), so the memory needs no read-during-write behaviour.
// Full throughput: with both sides ready the memory holds one or two entries and passes one beat per cycle.
module qdet_fifo #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 2
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
    // A run-time check: Icarus 11 rejects elaboration-time $error in generate blocks.
    initial if (DEPTH < 2) $fatal(1, "qdet_fifo: DEPTH must be >= 2");

    if (DEPTH <= 2) begin : g_skid
        qdet_skid #(.WIDTH(WIDTH)) u_skid (
            .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
            .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
            .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
        );
    end else begin : g_mem
        localparam int N  = DEPTH - 1;          // memory entries; the output register holds the last one
        localparam int AW = $clog2(N);          // N >= 2, so AW >= 1
        localparam int CW = $clog2(N + 1);

        logic [WIDTH-1:0] mem [0:N-1];
        logic [AW-1:0]    wr_ptr, rd_ptr;
        logic [CW-1:0]    count;                // entries in the memory (not counting the output register)
        logic             wr_en, rd_en;

        assign s_axis_tready = (count != CW'(N));
        assign wr_en = s_axis_tvalid && s_axis_tready;
        // Refill the output register when it is empty or being emptied and the memory has an entry.
        assign rd_en = (count != '0) && (!m_axis_tvalid || m_axis_tready);

        always_ff @(posedge ap_clk) begin
            if (wr_en) mem[wr_ptr] <= s_axis_tdata;
            if (rd_en) m_axis_tdata <= mem[rd_ptr];
        end

        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                wr_ptr        <= '0;
                rd_ptr        <= '0;
                count         <= '0;
                m_axis_tvalid <= 1'b0;
            end else begin
                if (wr_en) wr_ptr <= (wr_ptr == AW'(N - 1)) ? '0 : wr_ptr + 1'b1;
                if (rd_en) rd_ptr <= (rd_ptr == AW'(N - 1)) ? '0 : rd_ptr + 1'b1;
                if (wr_en && !rd_en) count <= count + 1'b1;
                else if (rd_en && !wr_en) count <= count - 1'b1;
                if (rd_en) m_axis_tvalid <= 1'b1;
                else if (m_axis_tready) m_axis_tvalid <= 1'b0;
            end
        end
    end
endmodule
