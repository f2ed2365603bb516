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

    // One multiplier's product and borrow bits: z[j] = [T_j < 0] for j = 1..LANES-1 (bit 0 is 0).
    function automatic logic [PRW-1:0] product(input logic [X_BITS-1:0] x, input logic [PW-1:0] w);
        logic signed [X_BITS:0] xs;
        logic signed [X_BITS+PW:0] full;
        xs = {X_SIGNED != 0 ? x[X_BITS-1] : 1'b0, x};
        full = (X_BITS+PW+1)'(xs) * (X_BITS+PW+1)'($signed(w));
        product = full;
    endfunction

    function automatic logic [LANES-1:0] borrows(input logic [X_BITS-1:0] x, input logic [PW-1:0] w);
        logic [LANES-1:0] z;
        logic x_nz, x_neg;
        x_nz = |x;
        x_neg = X_SIGNED != 0 ? x[X_BITS-1] : 1'b0;
        z = '0;
        for (int j = 1; j < LANES; j = j + 1) begin
            // The weights below lane j: negative when Wpk's bit j*S-1 is set, zero when its low j*S bits are.
            if (X_SIGNED != 0) z[j] = x_nz && (|(w & ((PW'(1) << (j*S)) - PW'(1)))) && (x_neg != w[j*S-1]);
            else z[j] = x_nz && w[j*S-1];
        end
        borrows = z;
    endfunction

    // ---------------------------------------------------------------- the multipliers (registered)
    logic [G*SIMD*PRW-1:0]   prod;
    logic [G*SIMD*LANES-1:0] z;
    logic                    prod_valid;
    logic [TAG_BITS-1:0]     prod_tag;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) prod_valid <= 1'b0;
        else if (en) prod_valid <= in_valid;
    end

    always_ff @(posedge ap_clk) begin
        if (en) prod_tag <= tag_in;
        if (en && in_valid) begin
            for (int g = 0; g < G; g = g + 1)
                for (int s = 0; s < SIMD; s = s + 1) begin
                    prod[(g*SIMD + s)*PRW +: PRW] <= product(x_flat[s*X_BITS +: X_BITS],
                                                             w_flat[(g*SIMD + s)*PW +: PW]);
                    z[(g*SIMD + s)*LANES +: LANES] <= borrows(x_flat[s*X_BITS +: X_BITS],
                                                              w_flat[(g*SIMD + s)*PW +: PW]);
                end
        end
    end

    // ---------------------------------------------------------------- lane values and each PE's tree
    // Lane j of group g (PE g*LANES + j) for input s: {z_{j+1}, P[j*S +: S]} as a signed S+1-bit value (the top
    // lane of a full group: P[j*S +: S+1]), plus the borrow z_j.
    function automatic logic [ACC_BITS-1:0] lane(input logic [PRW-1:0] p, input logic [LANES-1:0] zz, input int j);
        logic signed [S:0] v;
        if (j == LANES - 1) v = $signed(p[j*S +: S+1]);
        else v = $signed({zz[j+1], p[j*S +: S]});
        lane = ACC_BITS'(v) + ACC_BITS'(zz[j]);
    endfunction

    /* verilator lint_off UNUSEDSIGNAL */
    logic [PE-1:0]          valid_pe;
    logic [PE*TAG_BITS-1:0] tag_pe;
    /* verilator lint_on UNUSEDSIGNAL */
    for (genvar p = 0; p < PE; p = p + 1) begin : g_pe
        localparam int GG = p / LANES;
        localparam int J = p % LANES;
        logic [SIMD*ACC_BITS-1:0] leaves;
        always_comb begin
            for (int s = 0; s < SIMD; s = s + 1)
                leaves[s*ACC_BITS +: ACC_BITS] = lane(prod[(GG*SIMD + s)*PRW +: PRW],
                                                      z[(GG*SIMD + s)*LANES +: LANES], J);
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
