// qdet_dot: one registered dot product of N input elements with N signed weights (a MAC lane group).
//
// dot <= sum_i x[i]*w[i] in ACC_BITS two's complement, loaded only while `en` is high. Shared by the kernels that
// multiply (qdet_mvau, qdet_vvau); the product mapping is the README's "MAC lanes: LUT or DSP":
//   MAC_STYLE "lut": each product is a sum of shifted, AND-gated copies of x, one per weight bit (the sign bit
//                    subtracted), so no `*` reaches synthesis and no tool can put it on a DSP;
//   MAC_STYLE "dsp": a plain signed `*`, which synthesis maps to DSP slices.
// Elements are packed LSB first: x[i] in x_flat[i*X_BITS +: X_BITS], w[i] in w_flat[i*W_BITS +: W_BITS].
//
// The products and the adder tree are a function evaluated inside the output register's always_ff: a simulator
// then computes them once per enabled cycle (not on every input change), and synthesis gets the same balanced
// tree, combinational between the caller's registers and this one, with a clock enable on the result.
module qdet_dot #(
    parameter int N = 1,
    parameter int X_BITS = 4,
    parameter int X_SIGNED = 0,
    parameter int W_BITS = 4,
    parameter int ACC_BITS = 16,
    parameter MAC_STYLE = "lut"
) (
    input  logic                  ap_clk,
    input  logic                  en,
    input  logic [N*X_BITS-1:0]   x_flat,
    input  logic [N*W_BITS-1:0]   w_flat,
    output logic [ACC_BITS-1:0]   dot
);
    // A product of an (X_BITS+1)-bit signed input (sign- or zero-extended) and a W_BITS signed weight.
    localparam int PW = X_BITS + 1 + W_BITS;
    // Adder tree: leaves at [N2, N2 + N), node n = node 2n + node 2n+1, root at 1.
    localparam int N2 = N > 1 ? (1 << $clog2(N)) : 1;

    initial begin
        if (MAC_STYLE != "lut" && MAC_STYLE != "dsp") $fatal(1, "qdet_dot: MAC_STYLE must be \"lut\" or \"dsp\"");
    end

    // x extended to X_BITS+1 signed bits, so an unsigned input multiplies as a non-negative number.
    function automatic logic signed [X_BITS:0] xext(input logic [X_BITS-1:0] x);
        xext = {X_SIGNED != 0 ? x[X_BITS-1] : 1'b0, x};
    endfunction

    // Shift-and-add: AND-gated partial products rather than `if (w[j])`, the same adders without a data-dependent
    // branch in a simulator's inner loop; the weight's MSB carries a negative weight (two's complement).
    function automatic logic signed [PW-1:0] mul_lut(input logic signed [X_BITS:0] x, input logic [W_BITS-1:0] w);
        logic signed [PW-1:0] xs;
        logic signed [PW-1:0] r;
        xs = PW'(x);
        r = '0;
        for (int j = 0; j < W_BITS - 1; j = j + 1)
            r = r + ((xs <<< j) & {PW{w[j]}});
        r = r - ((xs <<< (W_BITS - 1)) & {PW{w[W_BITS-1]}});
        mul_lut = r;
    endfunction

    function automatic logic signed [PW-1:0] mul_dsp(input logic signed [X_BITS:0] x, input logic [W_BITS-1:0] w);
        mul_dsp = PW'(x) * PW'($signed(w));
    endfunction

    // MAC_STYLE is a constant, so only one branch is ever built. An assignment, not `return c ? a : b;` (which yosys
    // 0.70 rejects in a function), and not an if/else either: with the if/else yosys keeps each `*` a lone $mul, so
    // the adder tree cannot join the products in its DSP post-adders (measured: a 2x4 MVAU's tree then costs ~70
    // LUTs and ~25 FFs more).
    function automatic logic signed [PW-1:0] mul(input logic signed [X_BITS:0] x, input logic [W_BITS-1:0] w);
        mul = MAC_STYLE == "dsp" ? mul_dsp(x, w) : mul_lut(x, w);
    endfunction

    function automatic logic [ACC_BITS-1:0] sum(input logic [N*X_BITS-1:0] x, input logic [N*W_BITS-1:0] w);
        logic [ACC_BITS-1:0] tree [0:2*N2-1];
        for (int n = N2 + N; n < 2*N2; n = n + 1)
            tree[n] = '0;  // padding leaves; every other node is written below
        for (int i = 0; i < N; i = i + 1)
            // the cast sign-extends the product (or wraps it, when ACC_BITS < PW: the sum is taken mod 2^ACC_BITS)
            tree[N2 + i] = ACC_BITS'(mul(xext(x[i*X_BITS +: X_BITS]), w[i*W_BITS +: W_BITS]));
        for (int n = N2 - 1; n >= 1; n = n - 1)
            tree[n] = tree[2*n] + tree[2*n + 1];
        sum = tree[1];
    endfunction

    always_ff @(posedge ap_clk) begin
        if (en) dot <= sum(x_flat, w_flat);
    end
endmodule
