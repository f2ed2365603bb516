// qdet_dwc: AXI-Stream data width converter, IN_ELEMS -> OUT_ELEMS elements of BITS bits, element order kept
// (element 0 of the first input beat is element 0 of the first output beat).
//
// Four implementations, chosen by the ratio; each sustains the rate of its narrower side (one beat per cycle there)
// when both sides are ready:
// - equal: a qdet_skid;
// - IN = R*OUT (down): one wide register shifted OUT elements per output beat, followed by a qdet_skid on the
//   narrow output (the skid's registered ready lets the last chunk and the next input beat move in one cycle);
// - OUT = R*IN (up): a qdet_skid on the narrow input, then an OUT-element register filled IN elements at a time;
// - otherwise (e.g. 3 -> 2, 5 -> 3, 4 -> 6): an element buffer of CAP = max + 2*min - 1 elements, appended at its
//   fill level and drained OUT elements at a time into the output register. CAP is the smallest size at which the
//   registered "room for IN elements" test never starves the narrow side.
// In all cases s_axis_tready and m_axis_tvalid depend on registered state only.
module qdet_dwc #(
    parameter int IN_ELEMS  = 1,
    parameter int OUT_ELEMS = 1,
    parameter int BITS      = 8
) (
    input  logic                      ap_clk,
    input  logic                      ap_rst_n,
    input  logic [IN_ELEMS*BITS-1:0]  s_axis_tdata,
    input  logic                      s_axis_tvalid,
    output logic                      s_axis_tready,
    output logic [OUT_ELEMS*BITS-1:0] m_axis_tdata,
    output logic                      m_axis_tvalid,
    input  logic                      m_axis_tready
);
    localparam int IW = IN_ELEMS * BITS;
    localparam int OW = OUT_ELEMS * BITS;

    if (IN_ELEMS == OUT_ELEMS) begin : g_equal
        qdet_skid #(.WIDTH(IW)) u_skid (
            .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
            .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
            .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
        );

    end else if (IN_ELEMS % OUT_ELEMS == 0) begin : g_down
        localparam int R  = IN_ELEMS / OUT_ELEMS;
        localparam int LW = $clog2(R + 1);
        logic [IW-1:0] wide;
        logic [LW-1:0] left;            // output chunks still to send from `wide`
        logic          c_valid, c_ready;

        assign c_valid = (left != '0);
        // c_ready is the skid's registered ready, so this stays free of m_axis_tready.
        assign s_axis_tready = (left == '0) || (left == LW'(1) && c_ready);

        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                left <= '0;
            end else if (s_axis_tvalid && s_axis_tready) begin
                wide <= s_axis_tdata;
                left <= LW'(R);
            end else if (c_valid && c_ready) begin
                wide <= wide >> OW;
                left <= left - 1'b1;
            end
        end

        qdet_skid #(.WIDTH(OW)) u_skid (
            .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
            .s_axis_tdata(wide[OW-1:0]), .s_axis_tvalid(c_valid), .s_axis_tready(c_ready),
            .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
        );

    end else if (OUT_ELEMS % IN_ELEMS == 0) begin : g_up
        localparam int R  = OUT_ELEMS / IN_ELEMS;
        localparam int XW = $clog2(R);  // R >= 2
        logic [IW-1:0] c_data;
        logic          c_valid, c_ready;
        logic [XW-1:0] idx;             // next input slot
        logic          full;

        qdet_skid #(.WIDTH(IW)) u_skid (
            .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
            .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
            .m_axis_tdata(c_data), .m_axis_tvalid(c_valid), .m_axis_tready(c_ready)
        );

        // A full word leaves at the same edge as the first slot of the next one is written (slot 0 of m_axis_tdata
        // changes only after the consumer took the old word).
        assign c_ready = !full || m_axis_tready;
        assign m_axis_tvalid = full;

        always_ff @(posedge ap_clk) begin
            if (c_valid && c_ready) m_axis_tdata[idx*IW +: IW] <= c_data;
        end

        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                idx  <= '0;
                full <= 1'b0;
            end else begin
                if (c_valid && c_ready) idx <= (idx == XW'(R - 1)) ? '0 : idx + 1'b1;
                if (c_valid && c_ready && idx == XW'(R - 1)) full <= 1'b1;
                else if (m_axis_tready) full <= 1'b0;
            end
        end

    end else begin : g_general
        localparam int MX  = (IN_ELEMS > OUT_ELEMS) ? IN_ELEMS : OUT_ELEMS;
        localparam int MN  = (IN_ELEMS > OUT_ELEMS) ? OUT_ELEMS : IN_ELEMS;
        localparam int CAP = MX + 2 * MN - 1;
        localparam int BW  = CAP * BITS;
        localparam int CW  = $clog2(CAP + 1);

        logic [BW-1:0] buf_q;           // element j in bits [j*BITS +: BITS], oldest first
        logic [CW-1:0] cnt;             // elements held
        logic          push, pop;
        logic [CW-1:0] base;            // elements left after this cycle's pop: where the input lands
        logic [BW-1:0] shifted, ins, mask;

        assign s_axis_tready = (cnt <= CW'(CAP - IN_ELEMS));
        assign push = s_axis_tvalid && s_axis_tready;
        assign pop  = (cnt >= CW'(OUT_ELEMS)) && (!m_axis_tvalid || m_axis_tready);
        assign base = pop ? cnt - CW'(OUT_ELEMS) : cnt;
        assign shifted = pop ? (buf_q >> OW) : buf_q;
        assign ins  = BW'(s_axis_tdata) << (base * BITS);
        assign mask = BW'({IW{1'b1}}) << (base * BITS);

        always_ff @(posedge ap_clk) begin
            buf_q <= push ? ((shifted & ~mask) | (ins & mask)) : shifted;
            if (pop) m_axis_tdata <= buf_q[OW-1:0];
        end

        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                cnt           <= '0;
                m_axis_tvalid <= 1'b0;
            end else begin
                cnt <= base + (push ? CW'(IN_ELEMS) : '0);
                if (pop) m_axis_tvalid <= 1'b1;
                else if (m_axis_tready) m_axis_tvalid <= 1'b0;
            end
        end
    end
endmodule
