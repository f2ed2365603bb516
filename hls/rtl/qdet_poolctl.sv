// qdet_poolctl: the beat counters and output skid of the pool kernels (qdet_maxpool, qdet_avgpool, qdet_accpool).
//
// A pool reduces SPAN consecutive positions into one output group; each position is FOLDS beats (independent
// reductions: accpool's channel folds; 1 for the window pools, whose fold is the outer loop). The beat offered is
// fold `fold` of the current position, taken when `take`; the caller's lane logic combines it with its running
// value (the input alone while `first`, position 0) into `res`, which enters a qdet_skid at the group's last
// position. Only those beats wait for the skid, whose ready is a register: s_axis_tready never depends
// combinationally on m_axis_tready, and the input runs at one beat per cycle. `fold_next` is the fold of the
// following beat (for a read issued one beat ahead).
module qdet_poolctl #(
    parameter int FOLDS = 1,
    parameter int SPAN  = 1,
    parameter int WIDTH = 8
) (
    input  logic                                      ap_clk,
    input  logic                                      ap_rst_n,
    input  logic                                      s_axis_tvalid,
    output logic                                      s_axis_tready,
    output logic                                      take,
    output logic [(FOLDS > 1 ? $clog2(FOLDS) : 1)-1:0] fold,
    output logic [(FOLDS > 1 ? $clog2(FOLDS) : 1)-1:0] fold_next,
    output logic                                      first,
    input  logic [WIDTH-1:0]                          res,
    output logic [WIDTH-1:0]                          m_axis_tdata,
    output logic                                      m_axis_tvalid,
    input  logic                                      m_axis_tready
);
    localparam int FW = FOLDS > 1 ? $clog2(FOLDS) : 1;
    localparam int PW = SPAN > 1 ? $clog2(SPAN) : 1;

    logic [PW-1:0] pos;              // position of the next input beat
    logic          last_f, last_p, c_ready;

    assign last_f = (fold == FW'(FOLDS - 1));
    assign last_p = (pos == PW'(SPAN - 1));
    assign first = (pos == '0);
    assign fold_next = last_f ? '0 : fold + 1'b1;
    // c_ready is the skid's registered ready: only the group's last position waits for it.
    assign s_axis_tready = !last_p || c_ready;
    assign take = s_axis_tvalid && s_axis_tready;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            fold <= '0;
            pos  <= '0;
        end else if (take) begin
            fold <= fold_next;
            if (last_f) pos <= last_p ? '0 : pos + 1'b1;
        end
    end

    qdet_skid #(.WIDTH(WIDTH)) u_skid (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tdata(res), .s_axis_tvalid(s_axis_tvalid && last_p), .s_axis_tready(c_ready),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );
endmodule
