// qdet_packdot: PE dot products of one shared input vector (an MVAU's MAC beat), LANES products per DSP multiplier.
//
// dot[p] = sum_s x[s]*w[p][s] in ACC_BITS two's complement, for the SIMD inputs `x_flat` (x[s] at
// [s*X_BITS +: X_BITS]) and the packed weight word `w_flat` presented with `in_valid` under the caller's enable
// `en`; it appears LATENCY enabled cycles later with `out_valid` and the caller's `tag_in` of that beat.
//
// Packing (hls/rtl/README.md, "DSP-packed MAC lanes"). The PE channels form G = ceil(PE / LANES) groups of LANES
// lanes, lane j of group g being PE g*LANES + j. The weight word holds, for group g and input s, at
// [(g*SIMD + s)*PW +: PW], the PW-bit two's complement integer Wpk = sum_j w[g*LANES + j][s] * 2^(j*S), with
// S = X_BITS + W_BITS - 1 and PW = (LANES-1)*S + W_BITS + 1 (the writer packs it; missing lanes of the last group
// are 0). Wpk < 2^((LANES-1)*S + W_BITS - 1) always; only a top weight of -2^(W_BITS-1) above a negative lower
// part needs the extra bit, so W_NARROW = 1 (no weight is -2^(W_BITS-1), as Brevitas' narrow-range weight
// quantizers give) drops it: 4-bit products then pack 4 to a 25-bit DSP48E1 port too. One multiply
// P = x[s] * Wpk (a DSP48E1 takes PW <= 25, a DSP48E2 PW <= 27, with x on the 18-bit port) holds
// every lane's product v_j = x[s]*w_j, |v_j| < 2^S, at 2^(j*S). The lanes overlap only through borrows, which are
// known without the products: with T_j = x * (sum_{i<j} w_i 2^(i*S)) the part of P below lane j (|T_j| < 2^(j*S)),
//   v_j = $signed({z_{j+1}, P[j*S +: S]}) + z_j,   z_j = [T_j < 0] (z_0 = 0; the top lane reads S+1 bits of P),
// and z_j is the sign rule of a product: x != 0, the weights below lane j not all 0 (Wpk's low j*S bits), and
// x's sign differing from theirs (Wpk's bit j*S - 1). So the DSP does the multiply only: no pre-adder, post-adder
// or correction logic on the wide product, which yosys' UltraScale+ mapping would leave in the fabric. Exact for
// every operand value, signed or unsigned x, any widths (tests/sim/test_mvau.py, corner values included).
//
// Pipeline: the products and z bits are registered (the DSP's output register), then each PE's SIMD lane values go
// through a qdet_tree (TREE_LEVELS as qdet_dot's): LATENCY = 1 + (TREE_LEVELS = 0 ? 1 : max(1, ceil(clog2(SIMD) /
// TREE_LEVELS))).
module qdet_packdot #(
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int X_BITS = 4,
    parameter int X_SIGNED = 0,
    parameter int W_BITS = 4,
    parameter int ACC_BITS = 16,
    parameter int LANES = 1,
    parameter int TREE_LEVELS = 0,
    parameter int TAG_BITS = 1,
    parameter int W_NARROW = 0,
    // Derived (not set by callers): lane spacing, groups, packed weight width.
    parameter int S = X_BITS + W_BITS - 1,
    parameter int G = (PE + LANES - 1) / LANES,
    parameter int PW = (LANES - 1) * S + W_BITS + (LANES > 1 && W_NARROW == 0 ? 1 : 0)
) (
    input  logic                  ap_clk,
    input  logic                  ap_rst_n,
    input  logic                  en,
    input  logic                  in_valid,
    input  logic [TAG_BITS-1:0]   tag_in,
    input  logic [SIMD*X_BITS-1:0] x_flat,
    input  logic [G*SIMD*PW-1:0]  w_flat,
    output logic                  out_valid,
    output logic [TAG_BITS-1:0]   tag_out,
    output logic [PE*ACC_BITS-1:0] dot
);
    // The whole product is kept (the lanes use its low LANES*S + 1 bits): yosys maps a multiplier to a DSP only when
    // its output is at least 9 bits wide, and a 4x4-bit single lane truncated to the 8 bits it needs went to LUTs.
    localparam int PRW = X_BITS + 1 + PW;

    initial begin
        if (LANES < 1 || LANES > PE) $fatal(1, "qdet_packdot: LANES must be in 1..PE");
    end

    // ---------------------------------------------------------------- the multipliers (registered)
    // One generate block per multiplier: its product and borrow registers (what one DSP and its output register
    // hold), as plain wires and registers rather than functions, so each reads as the netlist it is.
    logic                prod_valid;
    logic [TAG_BITS-1:0] prod_tag;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) prod_valid <= 1'b0;
        else if (en) prod_valid <= in_valid;
    end

    always_ff @(posedge ap_clk) begin
        if (en) prod_tag <= tag_in;
    end

    for (genvar m = 0; m < G*SIMD; m = m + 1) begin : g_mul  // multiplier m: group m / SIMD, input m % SIMD
        logic [X_BITS-1:0] x;
        logic [PW-1:0]     w;
        logic signed [X_BITS:0] xs;  // x sign- or zero-extended, so an unsigned input multiplies as non-negative
        logic [LANES-1:0]  zc;
        (* keep *) logic [PRW-1:0] p;  // kept whole (PRW): synthesis would drop the bits no lane reads
        logic [LANES-1:0]  z;
        assign x = x_flat[(m % SIMD)*X_BITS +: X_BITS];
        assign w = w_flat[m*PW +: PW];
        assign xs = {X_SIGNED != 0 ? x[X_BITS-1] : 1'b0, x};
        // The borrow bits z[j] = [T_j < 0], j = 1..LANES-1 (bit 0 is 0): x != 0, the weights below lane j not all 0
        // (Wpk's low j*S bits) and negative when Wpk's bit j*S-1 is set, against x's sign.
        assign zc[0] = 1'b0;
        for (genvar j = 1; j < LANES; j = j + 1) begin : g_borrow
            if (X_SIGNED != 0) begin : g_signed
                assign zc[j] = (|x) && (|w[j*S-1:0]) && (xs[X_BITS] != w[j*S-1]);
            end else begin : g_unsigned
                assign zc[j] = (|x) && w[j*S-1];
            end
        end
        always_ff @(posedge ap_clk) begin
            if (en && in_valid) begin
                p <= PRW'(xs) * PRW'($signed(w));
                z <= zc;
            end
        end
    end

    // ---------------------------------------------------------------- lane values and each PE's tree
    // Lane j of group g (PE g*LANES + j) for input s: {z_{j+1}, P[j*S +: S]} as a signed S+1-bit value (the top
    // lane of a full group: P[j*S +: S+1]), plus the borrow z_j.
    /* verilator lint_off UNUSEDSIGNAL */
    logic [PE-1:0]          valid_pe;
    logic [PE*TAG_BITS-1:0] tag_pe;
    /* verilator lint_on UNUSEDSIGNAL */
    for (genvar p = 0; p < PE; p = p + 1) begin : g_pe
        localparam int GG = p / LANES;
        localparam int J = p % LANES;
        logic [SIMD*ACC_BITS-1:0] leaves;
        for (genvar s = 0; s < SIMD; s = s + 1) begin : g_leaf
            logic signed [S:0] v;
            if (J == LANES - 1) begin : g_top
                assign v = $signed(g_mul[GG*SIMD + s].p[J*S +: S+1]);
            end else begin : g_mid
                assign v = $signed({g_mul[GG*SIMD + s].z[J+1], g_mul[GG*SIMD + s].p[J*S +: S]});
            end
            assign leaves[s*ACC_BITS +: ACC_BITS] = ACC_BITS'(v) + ACC_BITS'(g_mul[GG*SIMD + s].z[J]);
        end
        qdet_tree #(.N(SIMD), .ACC_BITS(ACC_BITS), .TREE_LEVELS(TREE_LEVELS), .TAG_BITS(TAG_BITS)) u_tree (
            .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .en(en), .in_valid(prod_valid), .tag_in(prod_tag),
            .leaves(leaves), .out_valid(valid_pe[p]), .tag_out(tag_pe[p*TAG_BITS +: TAG_BITS]),
            .sum(dot[p*ACC_BITS +: ACC_BITS])
        );
    end

    assign out_valid = valid_pe[0];
    assign tag_out = tag_pe[TAG_BITS-1:0];
endmodule
