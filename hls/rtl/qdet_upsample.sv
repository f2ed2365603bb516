// qdet_upsample: nearest-neighbour upsampling of an NHWC AXI-Stream by integer factors (FINN
// UpsampleNearestNeighbour): output pixel (y, x) is input pixel (y / FH, x / FW), FH = OFM_H / IFM_H,
// FW = OFM_W / IFM_W; CF = C / SIMD beats per pixel, beat cf holding channels cf*SIMD .. cf*SIMD + SIMD-1.
//
// Two row buffers of RW = IFM_W*CF beats (one memory of 2*RW entries, simple dual port, registered read): input
// row r is written into bank r % 2 while the reader replays bank (r-1) % 2, FH output rows of OFM_W pixels, each
// input pixel's CF beats FW times in a row. The reader may also read the row still being written, up to the last
// beat written, so the first output beat leaves two cycles after the first input beat. `filled` counts rows
// written completely and not yet replayed (0..2): the writer takes input while it is < 2 (s_axis_tready, a
// register), the reader reads while filled > 0 or its address is below the writer's. As FH*FW >= 1 the writer is
// never the bottleneck: without backpressure the output moves one beat per cycle, a frame taking
// OFM_H*OFM_W*CF cycles (frames back to back need no gap: the frame structure is only rows). The memory's read
// register is m_axis_tdata (as in qdet_fifo); a read and a write never address the same entry in one cycle.
module qdet_upsample #(
    parameter int IFM_H = 1,
    parameter int IFM_W = 1,
    parameter int OFM_H = 2,
    parameter int OFM_W = 2,
    parameter int C     = 1,
    parameter int SIMD  = 1,
    parameter int BITS  = 4
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
    initial if (OFM_H % IFM_H != 0 || OFM_W % IFM_W != 0 || C % SIMD != 0)
        $fatal(1, "qdet_upsample: OFM_H/OFM_W must be multiples of IFM_H/IFM_W and SIMD must divide C");

    localparam int W  = SIMD * BITS;
    localparam int FH = OFM_H / IFM_H;
    localparam int FW = OFM_W / IFM_W;
    localparam int CF = C / SIMD;
    localparam int RW = IFM_W * CF;                          // beats per input row (one bank)
    localparam int AW = $clog2(RW + 1);                      // addresses 0..RW (RW: "row complete"), >= 1 bit
    localparam int MW = $clog2(2 * RW);                      // memory address, >= 1 bit
    localparam int CFW = (CF > 1) ? $clog2(CF) : 1;
    localparam int FWW = (FW > 1) ? $clog2(FW) : 1;
    localparam int FHW = (FH > 1) ? $clog2(FH) : 1;
    localparam int XW  = (IFM_W > 1) ? $clog2(IFM_W) : 1;

    logic [W-1:0]  mem [0:2*RW-1];
    logic          wbank, rbank;
    logic [AW-1:0] waddr;                                    // beats of the current row written
    logic [1:0]    filled;
    logic          wr_en, wr_last;

    // Reader position: output row ry of the input row, input pixel ix, repeat rx, channel fold cf; the read
    // address is base + cf with base = ix*CF.
    logic [FHW-1:0] ry;
    logic [XW-1:0]  ix;
    logic [FWW-1:0] rx;
    logic [CFW-1:0] cf;
    logic [AW-1:0]  base, raddr;
    logic           avail, rd_en, cf_last, rx_last, ix_last, rd_last;

    // ---- write side
    assign s_axis_tready = (filled != 2'd2);
    assign wr_en   = s_axis_tvalid && s_axis_tready;
    assign wr_last = wr_en && (waddr == AW'(RW - 1));

    always_ff @(posedge ap_clk) begin
        if (wr_en) mem[wbank ? MW'(RW) + MW'(waddr) : MW'(waddr)] <= s_axis_tdata;
    end

    // ---- read side
    // filled = 0: the reader is on the row being written (rbank == wbank) and reads only what is there.
    assign avail   = (filled != 2'd0) || (raddr < waddr);
    assign rd_en   = avail && (!m_axis_tvalid || m_axis_tready);
    assign raddr   = base + AW'(cf);
    assign cf_last = (cf == CFW'(CF - 1));
    assign rx_last = (rx == FWW'(FW - 1));
    assign ix_last = (ix == XW'(IFM_W - 1));
    assign rd_last = rd_en && cf_last && rx_last && ix_last && (ry == FHW'(FH - 1));

    always_ff @(posedge ap_clk) begin
        if (rd_en) m_axis_tdata <= mem[rbank ? MW'(RW) + MW'(raddr) : MW'(raddr)];
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            wbank         <= 1'b0;
            rbank         <= 1'b0;
            waddr         <= '0;
            filled        <= '0;
            ry            <= '0;
            ix            <= '0;
            rx            <= '0;
            cf            <= '0;
            base          <= '0;
            m_axis_tvalid <= 1'b0;
        end else begin
            if (wr_en) begin
                waddr <= wr_last ? '0 : waddr + 1'b1;
                if (wr_last) wbank <= !wbank;
            end
            filled <= filled + (wr_last ? 2'd1 : 2'd0) - (rd_last ? 2'd1 : 2'd0);
            if (rd_en) begin
                cf <= cf_last ? '0 : cf + 1'b1;
                if (cf_last) begin
                    rx <= rx_last ? '0 : rx + 1'b1;
                    if (rx_last) begin
                        ix   <= ix_last ? '0 : ix + 1'b1;
                        base <= ix_last ? '0 : base + AW'(CF);
                        if (ix_last) begin
                            ry <= (ry == FHW'(FH - 1)) ? '0 : ry + 1'b1;
                            if (ry == FHW'(FH - 1)) rbank <= !rbank;
                        end
                    end
                end
            end
            if (rd_en) m_axis_tvalid <= 1'b1;
            else if (m_axis_tready) m_axis_tvalid <= 1'b0;
        end
    end
endmodule
