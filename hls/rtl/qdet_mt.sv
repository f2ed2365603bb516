// qdet_mt: the multi-threshold activation stage and output skid of qdet_mvau, qdet_vvau and qdet_thresholding.
//
// out[p] = ACT_BIAS + #{k : v[p] >= T[row][p][k]} truncated to OUT_BITS (STEPS > 0), or v[p] itself (STEPS = 0, no
// activation: OUT_BITS = V_BITS and no threshold memory), for PE values per beat, into a qdet_skid.
// Threshold memory: DEPTH rows from T_FILE, lane (p, k) at bit offset (p*STEPS + k)*T_BITS, a plain array loaded by
// $readmemh and read through a register under the caller's pipeline enable `en` (the form synthesis maps to block
// or distributed ROM; a read issued just before a stall is held, not lost). The caller issues the read of row
// `t_addr` one enabled cycle before it presents that row's values `v` with `v_valid`; the comparisons are
// combinational from those two registers into the skid. Values and thresholds are both two's complement (SIGNED)
// or both unsigned, extended one bit beyond the wider of the two, so every compare is exact; ties count (v >= t)
// and no ordering of the thresholds is needed.
// `v_ready` is the skid's s_axis_tready, a register: the caller's enable is `!v_valid || v_ready`, which keeps its
// s_axis_tready free of m_axis_tready.
module qdet_mt #(
    parameter int PE = 1,
    parameter int V_BITS = 16,
    parameter int T_BITS = 16,
    parameter int SIGNED = 1,
    parameter int STEPS = 0,
    parameter int OUT_BITS = 16,
    parameter int ACT_BIAS = 0,
    parameter int DEPTH = 1,
    parameter T_FILE = "",
    // 1: the comparison counts are registered before the skid (one more cycle of latency, a shorter path from the
    // threshold register); `v_ready` is then !held || skid ready, still free of m_axis_tready.
    parameter int REG_COMPARE = 0
) (
    input  logic                                  ap_clk,
    input  logic                                  ap_rst_n,
    /* verilator lint_off UNUSEDSIGNAL */  // the threshold read goes unused without an activation (STEPS = 0)
    input  logic                                  en,
    input  logic [(DEPTH > 1 ? $clog2(DEPTH) : 1)-1:0] t_addr,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic [PE*V_BITS-1:0]                  v,
    input  logic                                  v_valid,
    output logic                                  v_ready,
    output logic [PE*OUT_BITS-1:0]                m_axis_tdata,
    output logic                                  m_axis_tvalid,
    input  logic                                  m_axis_tready
);
    localparam int OW = PE * OUT_BITS;
    // Compare width: one bit beyond the wider operand, so an unsigned value compares as a non-negative number.
    localparam int CW = (V_BITS > T_BITS ? V_BITS : T_BITS) + 1;

    initial begin
        if (STEPS == 0 && OUT_BITS != V_BITS) $fatal(1, "qdet_mt: OUT_BITS must equal V_BITS when STEPS = 0");
    end

    logic [OW-1:0] out;

    if (STEPS > 0) begin : g_act
        logic [PE*STEPS*T_BITS-1:0] tmem [0:DEPTH-1];
        logic [PE*STEPS*T_BITS-1:0] t;
        initial $readmemh(T_FILE, tmem);

        always_ff @(posedge ap_clk) begin
            if (en) t <= tmem[t_addr];
        end

        // The count of passed thresholds as a balanced tree of pairwise sums: a chain of conditional increments
        // (`if (x >= t) cnt++`) is STEPS adders deep (measured: 30 cells on tinydet's 15-step layers).
        localparam int S2 = 1 << $clog2(STEPS + 1);
        function automatic int ones(input logic [STEPS-1:0] b);
            int s [0:S2-1];
            for (int i = 0; i < S2; i = i + 1)
                s[i] = i < STEPS ? int'(b[i]) : 0;
            for (int w = S2 / 2; w >= 1; w = w / 2)
                for (int i = 0; i < w; i = i + 1)
                    s[i] = s[2*i] + s[2*i + 1];
            ones = s[0];
        endfunction

        always_comb begin
            for (int p = 0; p < PE; p = p + 1) begin
                logic [V_BITS-1:0] x;
                logic [T_BITS-1:0] th;
                logic signed [CW-1:0] xs, ts;
                logic [STEPS-1:0] passed;
                int cnt;
                x = v[p*V_BITS +: V_BITS];
                xs = {{(CW - V_BITS){SIGNED != 0 && x[V_BITS-1]}}, x};
                for (int k = 0; k < STEPS; k = k + 1) begin
                    th = t[(p*STEPS + k)*T_BITS +: T_BITS];
                    ts = {{(CW - T_BITS){SIGNED != 0 && th[T_BITS-1]}}, th};
                    passed[k] = xs >= ts;
                end
                cnt = ACT_BIAS + ones(passed);
                out[p*OUT_BITS +: OUT_BITS] = cnt[OUT_BITS-1:0];
            end
        end
    end else begin : g_noact
        assign out = v;
    end

    logic [OW-1:0] sk_data;
    logic          sk_valid, sk_ready;

    if (REG_COMPARE != 0) begin : g_reg
        logic          held;      // r holds a counted result the skid has not taken yet
        logic [OW-1:0] r;
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                held <= 1'b0;
            end else if (!held || sk_ready) begin
                held <= v_valid;
            end
        end
        always_ff @(posedge ap_clk) begin
            if ((!held || sk_ready) && v_valid) r <= out;
        end
        assign v_ready = !held || sk_ready;
        assign sk_data = r;
        assign sk_valid = held;
    end else begin : g_comb
        assign v_ready = sk_ready;
        assign sk_data = out;
        assign sk_valid = v_valid;
    end

    qdet_skid #(.WIDTH(OW)) u_skid (
        .ap_clk(ap_clk),
        .ap_rst_n(ap_rst_n),
        .s_axis_tdata(sk_data),
        .s_axis_tvalid(sk_valid),
        .s_axis_tready(sk_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );
endmodule
