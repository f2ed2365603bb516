// qdet_swg: sliding-window (convolution input) generator, FINN ConvolutionInputGenerator semantics.
//
// Input: the (already padded) image, IFM_H x IFM_W x C in NHWC order, SIMD channels per beat (CF = C/SIMD beats
// per pixel). Output, per output pixel (oy, ox) in raster order, the window rows iy = oy*STRIDE_H + ky*DIL_H and
// columns ix = ox*STRIDE_W + kx*DIL_W:
//   PARALLEL_WINDOW=0, DEPTHWISE=0: beats in (ky, kx, cf) order (cf fastest): im2col index (ky*K_W + kx)*C + c.
//   PARALLEL_WINDOW=0, DEPTHWISE=1: beats in (cf, ky, kx) order (kx fastest): FINN's depthwise order.
//   PARALLEL_WINDOW=1: one beat per channel fold cf, element (ky*K_W + kx)*SIMD + s; with SIMD = C (required
//     unless DEPTHWISE=1 or K_H*K_W = 1) that is the whole im2col vector.
//
// PARALLEL_WINDOW=0 keeps a ring buffer of DEPTH input beats (one write port, one registered read port: a simple
// dual-port RAM that synthesis maps to BRAM or LUTRAM). Stream index w (counting across frames) lives at address
// w mod DEPTH. The window being read starts at stream index `tail`; nothing older than `tail` is read again, so a
// write may go ahead while w < tail + DEPTH, and a window may start once tail + SPAN beats have been written (SPAN:
// the window's extent in the stream). One counter, ahead = written - tail, carries both conditions. DEPTH is SPAN
// plus the largest jump of `tail` between windows (frames excepted), so that the input can always fill the next
// window while the current one is read: one output beat per cycle, like FINN's RTL SWG. Any DEPTH >= SPAN is
// correct; a smaller one only stalls more.
//
// PARALLEL_WINDOW=1 pushes the stream through a delay line of SPAN beats: per kernel row a register segment holding
// the K_W taps, and between rows a RAM delay (the rest of an image row). When the oldest beat is the top-left of a
// window the taps are that window: one input beat per cycle, at most one output beat per input beat.
//
// The output goes through qdet_skid, so s_axis_tready and m_axis_tvalid never depend on m_axis_tready.
module qdet_swg #(
    parameter int IFM_H = 8,
    parameter int IFM_W = 8,
    parameter int C = 4,
    parameter int SIMD = 2,
    parameter int K_H = 3,
    parameter int K_W = 3,
    parameter int STRIDE_H = 1,
    parameter int STRIDE_W = 1,
    parameter int DIL_H = 1,
    parameter int DIL_W = 1,
    parameter int OFM_H = 6,
    parameter int OFM_W = 6,
    parameter int BITS = 8,
    parameter int DEPTHWISE = 0,
    parameter int PARALLEL_WINDOW = 0
) (
    input  logic                                                        ap_clk,
    input  logic                                                        ap_rst_n,
    input  logic [SIMD*BITS-1:0]                                        s_axis_tdata,
    input  logic                                                        s_axis_tvalid,
    output logic                                                        s_axis_tready,
    output logic [(PARALLEL_WINDOW != 0 ? K_H*K_W : 1)*SIMD*BITS-1:0] m_axis_tdata,
    output logic                                                        m_axis_tvalid,
    input  logic                                                        m_axis_tready
);
    localparam int CF = C / SIMD;               // beats per pixel
    localparam int W = SIMD * BITS;             // beat width
    localparam int OW = (PARALLEL_WINDOW != 0 ? K_H * K_W : 1) * W;
    localparam int ROW_OFF = DIL_H * IFM_W * CF;  // stream distance between kernel rows
    localparam int COL_OFF = DIL_W * CF;          // stream distance between kernel columns

    // Output side: a register slice so that no ready path crosses this kernel.
    logic [OW-1:0] sk_data;
    logic          sk_valid, sk_ready;
    qdet_skid #(.WIDTH(OW)) u_skid (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tdata(sk_data), .s_axis_tvalid(sk_valid), .s_axis_tready(sk_ready),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

    if (PARALLEL_WINDOW == 0) begin : g_seq
        // ---- ring buffer geometry (all in beats) ----
        localparam int SPAN = (K_H - 1) * ROW_OFF + (K_W - 1) * COL_OFF + CF;
        localparam int J_COL = STRIDE_W * CF;                                         // next window in the row
        localparam int J_ROW = (STRIDE_H * IFM_W - (OFM_W - 1) * STRIDE_W) * CF;     // first window, next row
        localparam int J_FRM = ((IFM_H - (OFM_H - 1) * STRIDE_H) * IFM_W - (OFM_W - 1) * STRIDE_W) * CF;  // next frame
        localparam int D_FULL = SPAN + (J_ROW > J_COL ? J_ROW : J_COL);
        // A ring just over a power of two would take twice the BRAM (FINN's buffer sizes are such): round down
        // when that costs at most D_FULL/16 stall cycles per output row (the writer waits at row ends).
        localparam int D_POW2 = 1 << $clog2(D_FULL + 1) >> 1;
        localparam int DEPTH = (D_POW2 >= SPAN + J_COL && 16 * D_POW2 >= 15 * D_FULL) ? D_POW2 : D_FULL;
        localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
        // ahead = written - tail lies in [-J_FRM, DEPTH]: signed, with room for both ends.
        localparam int NW = $clog2((DEPTH > J_FRM ? DEPTH : J_FRM) + 1) + 2;
        // In-window loops: a (fastest), b, c. Read-address step when a advances / a wraps and b advances /
        // a and b wrap and c advances (may be negative: taken mod DEPTH).
        localparam int NA = DEPTHWISE != 0 ? K_W : CF;
        localparam int NB = DEPTHWISE != 0 ? K_H : K_W;
        localparam int NC = DEPTHWISE != 0 ? CF : K_H;
        localparam int DA = DEPTHWISE != 0 ? COL_OFF : 1;
        localparam int DB = DEPTHWISE != 0 ? ROW_OFF - (K_W - 1) * COL_OFF : COL_OFF - (CF - 1);
        localparam int DC = DEPTHWISE != 0 ? 1 - (K_H - 1) * ROW_OFF - (K_W - 1) * COL_OFF
                                           : ROW_OFF - (K_W - 1) * COL_OFF - (CF - 1);
        localparam logic [AW:0] DA_M = (AW+1)'(((DA % DEPTH) + DEPTH) % DEPTH);
        localparam logic [AW:0] DB_M = (AW+1)'(((DB % DEPTH) + DEPTH) % DEPTH);
        localparam logic [AW:0] DC_M = (AW+1)'(((DC % DEPTH) + DEPTH) % DEPTH);
        localparam logic [AW:0] JC_M = (AW+1)'(J_COL % DEPTH);
        localparam logic [AW:0] JR_M = (AW+1)'(J_ROW % DEPTH);
        localparam logic [AW:0] JF_M = (AW+1)'(J_FRM % DEPTH);
        localparam logic signed [NW-1:0] SPAN_S = NW'(SPAN);
        localparam logic signed [NW-1:0] DEPTH_S = NW'(DEPTH);
        localparam logic signed [NW-1:0] JC_S = NW'(J_COL);
        localparam logic signed [NW-1:0] JR_S = NW'(J_ROW);
        localparam logic signed [NW-1:0] JF_S = NW'(J_FRM);
        localparam int NMAX = NA > NB ? (NA > NC ? NA : NC) : (NB > NC ? NB : NC);
        localparam int CW = $clog2(NMAX + 1);
        localparam int OXW = $clog2(OFM_W + 1);
        localparam int OYW = $clog2(OFM_H + 1);

        logic [W-1:0] mem [DEPTH];
        logic [AW-1:0] waddr, raddr, taddr;
        logic signed [NW-1:0] ahead;
        logic first;                      // the next read is a window's first
        logic [CW-1:0] ca, cb, cc;
        logic [OXW-1:0] ox;
        logic [OYW-1:0] oy;
        logic [W-1:0] q;
        logic qv;

        // (a + d) mod DEPTH for a < DEPTH, d < DEPTH.
        localparam logic [AW:0] DEPTH_M = (AW+1)'(DEPTH);
        function automatic logic [AW-1:0] addm(input logic [AW-1:0] a, input logic [AW:0] d);
            logic [AW:0] s;
            s = {1'b0, a} + d;
            if (s >= DEPTH_M) s = s - DEPTH_M;
            addm = s[AW-1:0];
        endfunction

        wire s_fire = s_axis_tvalid && s_axis_tready;
        assign s_axis_tready = ahead < DEPTH_S;
        // The read stage moves when its register is empty or the skid takes it (the skid's ready is a flop).
        wire adv = !qv || sk_ready;
        wire issue = adv && (!first || ahead >= SPAN_S);
        wire la = ca == CW'(NA - 1), lb = cb == CW'(NB - 1), lc = cc == CW'(NC - 1);
        wire lox = ox == OXW'(OFM_W - 1), loy = oy == OYW'(OFM_H - 1);
        wire win_end = issue && la && lb && lc;
        // Where the next window starts, relative to this one.
        wire [AW:0] jump_m = !lox ? JC_M : !loy ? JR_M : JF_M;
        wire signed [NW-1:0] jump_s = !lox ? JC_S : !loy ? JR_S : JF_S;
        wire [AW-1:0] tnext = addm(taddr, jump_m);

        always_ff @(posedge ap_clk) begin
            if (s_fire) mem[waddr] <= s_axis_tdata;
            if (issue) q <= mem[raddr];
        end

        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                waddr <= '0;
                raddr <= '0;
                taddr <= '0;
                ahead <= '0;
                first <= 1'b1;
                ca <= '0;
                cb <= '0;
                cc <= '0;
                ox <= '0;
                oy <= '0;
                qv <= 1'b0;
            end else begin
                if (s_fire) waddr <= (waddr == AW'(DEPTH - 1)) ? '0 : waddr + 1'b1;
                ahead <= ahead + (s_fire ? NW'(1) : NW'(0)) - (win_end ? jump_s : NW'(0));
                if (adv) qv <= issue;
                if (issue) begin
                    first <= win_end;
                    if (!la) begin
                        ca <= ca + 1'b1;
                        raddr <= addm(raddr, DA_M);
                    end else begin
                        ca <= '0;
                        if (!lb) begin
                            cb <= cb + 1'b1;
                            raddr <= addm(raddr, DB_M);
                        end else begin
                            cb <= '0;
                            if (!lc) begin
                                cc <= cc + 1'b1;
                                raddr <= addm(raddr, DC_M);
                            end else begin
                                // Window done: move tail (freeing its oldest beats for the writer).
                                cc <= '0;
                                taddr <= tnext;
                                raddr <= tnext;
                                ox <= lox ? '0 : ox + 1'b1;
                                if (lox) oy <= loy ? '0 : oy + 1'b1;
                            end
                        end
                    end
                end
            end
        end

        assign sk_data = q;
        assign sk_valid = qv;
    end else begin : g_par
        // ---- delay line: K_H register segments of LS beats, joined by RAM delays of G beats ----
        localparam int LS = (K_W - 1) * COL_OFF + 1;
        localparam int G = ROW_OFF - LS;          // beats between one row segment's oldest and the next's newest
        localparam int SPAN = (K_H - 1) * ROW_OFF + LS;
        localparam int GW = G > 1 ? $clog2(G) : 1;
        localparam int FW = $clog2(SPAN + 1);
        localparam int XW = $clog2(IFM_W + 1);
        localparam int YW = $clog2(IFM_H + 1);
        localparam int FCW = $clog2(CF + 1);
        localparam int SXW = $clog2(STRIDE_W + 1);
        localparam int SYW = $clog2(STRIDE_H + 1);
        // The tail's output-column/row counters also count trailing positions no window starts at.
        localparam int OXW = XW + 1;
        localparam int OYW = YW + 1;

        logic [W-1:0] sr [K_H][LS];        // sr[ky][0] is the oldest beat of kernel row ky
        logic [W-1:0] gap_out [K_H];       // what enters sr[ky][LS-1] at a shift (ky < K_H-1)
        logic win_valid;                   // the delay line holds a window not yet handed to the skid
        logic primed;                      // SPAN beats have entered: sr[0][0] is a real stream position
        logic [FW-1:0] fill;
        // Stream position of sr[0][0] (after priming): channel fold, column, row, and stride phases/indices.
        logic [FCW-1:0] tcf;
        logic [XW-1:0] tx;
        logic [YW-1:0] ty;
        logic [SXW-1:0] px;
        logic [SYW-1:0] py;
        logic [OXW-1:0] ox;
        logic [OYW-1:0] oy;

        // Shift when a beat arrives and the current window (if any) leaves this cycle.
        assign s_axis_tready = !win_valid || sk_ready;
        wire shift = s_axis_tvalid && s_axis_tready;

        for (genvar ky = 0; ky < K_H - 1; ky++) begin : g_gap
            if (G == 0) begin : g_wire
                assign gap_out[ky] = sr[ky+1][0];
            end else if (G == 1) begin : g_reg
                logic [W-1:0] r;
                always_ff @(posedge ap_clk) if (shift) r <= sr[ky+1][0];
                assign gap_out[ky] = r;
            end else begin : g_ram
                // Circular delay of G shifts; the read of the slot written next is prefetched into q, so at each
                // shift q holds the beat that entered G shifts earlier (synchronous read: BRAM or LUTRAM).
                logic [W-1:0] dmem [G];
                logic [W-1:0] q;
                logic [GW-1:0] wp, rp;
                assign rp = (wp == GW'(G - 1)) ? '0 : wp + 1'b1;
                always_ff @(posedge ap_clk) begin
                    if (!ap_rst_n) begin
                        wp <= '0;
                    end else if (shift) begin
                        wp <= rp;
                    end
                end
                always_ff @(posedge ap_clk) begin
                    if (shift) begin
                        dmem[wp] <= sr[ky+1][0];
                        q <= dmem[rp];
                    end
                end
                assign gap_out[ky] = q;
            end
        end
        assign gap_out[K_H-1] = s_axis_tdata;

        always_ff @(posedge ap_clk) begin
            if (shift) begin
                for (int ky = 0; ky < K_H; ky++) begin
                    for (int j = 0; j < LS - 1; j++) sr[ky][j] <= sr[ky][j+1];
                    sr[ky][LS-1] <= gap_out[ky];
                end
            end
        end

        // The tail position after this shift, and whether it starts a window.
        logic [FCW-1:0] n_tcf;
        logic [XW-1:0] n_tx;
        logic [YW-1:0] n_ty;
        logic [SXW-1:0] n_px;
        logic [SYW-1:0] n_py;
        logic [OXW-1:0] n_ox;
        logic [OYW-1:0] n_oy;
        always_comb begin
            n_tcf = '0; n_tx = '0; n_ty = '0; n_px = '0; n_py = '0; n_ox = '0; n_oy = '0;
            if (primed) begin
                n_tcf = tcf; n_tx = tx; n_ty = ty; n_px = px; n_py = py; n_ox = ox; n_oy = oy;
                if (tcf != FCW'(CF - 1)) begin
                    n_tcf = tcf + 1'b1;
                end else begin
                    n_tcf = '0;
                    if (tx != XW'(IFM_W - 1)) begin
                        n_tx = tx + 1'b1;
                        if (px == SXW'(STRIDE_W - 1)) begin
                            n_px = '0;
                            n_ox = ox + 1'b1;
                        end else begin
                            n_px = px + 1'b1;
                        end
                    end else begin
                        n_tx = '0; n_px = '0; n_ox = '0;
                        if (ty != YW'(IFM_H - 1)) begin
                            n_ty = ty + 1'b1;
                            if (py == SYW'(STRIDE_H - 1)) begin
                                n_py = '0;
                                n_oy = oy + 1'b1;
                            end else begin
                                n_py = py + 1'b1;
                            end
                        end else begin
                            n_ty = '0; n_py = '0; n_oy = '0;
                        end
                    end
                end
            end
        end
        wire n_win = n_px == '0 && n_py == '0 && n_ox < OXW'(OFM_W) && n_oy < OYW'(OFM_H);
        wire primes = !primed && fill == FW'(SPAN - 1);

        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                win_valid <= 1'b0;
                primed <= 1'b0;
                fill <= '0;
                tcf <= '0; tx <= '0; ty <= '0; px <= '0; py <= '0; ox <= '0; oy <= '0;
            end else begin
                if (shift) begin
                    if (!primed) fill <= fill + 1'b1;
                    if (primes) primed <= 1'b1;
                    tcf <= n_tcf; tx <= n_tx; ty <= n_ty; px <= n_px; py <= n_py; ox <= n_ox; oy <= n_oy;
                    win_valid <= (primed || primes) && n_win;
                end else if (sk_ready) begin
                    win_valid <= 1'b0;
                end
            end
        end

        for (genvar ky = 0; ky < K_H; ky++) begin : g_row
            for (genvar kx = 0; kx < K_W; kx++) begin : g_tap
                assign sk_data[(ky*K_W + kx)*W +: W] = sr[ky][kx*COL_OFF];
            end
        end
        assign sk_valid = win_valid;
    end
endmodule
