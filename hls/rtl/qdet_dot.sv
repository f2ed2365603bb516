// qdet_dot: one dot product of N input elements with N signed weights (a MAC lane group), optionally pipelined.
//
// dot = sum_i x[i]*w[i] in ACC_BITS two's complement, for the operands presented with `in_valid` under the
// caller's pipeline enable `en`; it appears LATENCY enabled cycles later with `out_valid`, together with the
// caller's `tag_in` of that beat (its control: first/last/group), so a caller never restates this module's latency.
// The product mapping is the README's "MAC lanes: LUT or DSP":
//   MAC_STYLE "lut": each product is a sum of shifted, AND-gated copies of x, one per weight bit (the sign bit
//                    subtracted), so no `*` reaches synthesis and no tool can put it on a DSP;
//   MAC_STYLE "dsp": a plain signed `*`, which synthesis maps to DSP slices.
// Elements are packed LSB first: x[i] in x_flat[i*X_BITS +: X_BITS], w[i] in w_flat[i*W_BITS +: W_BITS].
//
// Pipelining (TREE_LEVELS): 0 keeps the products and the whole adder tree (qdet_tree) combinational into the
// output register (LATENCY 1: the shortest latency, the longest path). TREE_LEVELS = L > 0 registers the products,
// then every L levels of the balanced tree (its depth is clog2(N)): LATENCY = 1 + max(1, ceil(clog2(N) / L)), and
// the longest combinational path is one product or L adders. Every register stage sits under `en` and loads only
// when its input stage is valid.
module qdet_dot #(
    parameter int N = 1,
    parameter int X_BITS = 4,
    parameter int X_SIGNED = 0,
    parameter int W_BITS = 4,
    parameter int ACC_BITS = 16,
    parameter MAC_STYLE = "lut",
    parameter int TREE_LEVELS = 0,
    parameter int TAG_BITS = 1
) (
    input  logic                  ap_clk,
    input  logic                  ap_rst_n,
    input  logic                  en,
    input  logic                  in_valid,
    input  logic [TAG_BITS-1:0]   tag_in,
    input  logic [N*X_BITS-1:0]   x_flat,
    input  logic [N*W_BITS-1:0]   w_flat,
    output logic                  out_valid,
    output logic [TAG_BITS-1:0]   tag_out,
    output logic [ACC_BITS-1:0]   dot
);
    // A product of an (X_BITS+1)-bit signed input (sign- or zero-extended) and a W_BITS signed weight.
    localparam int PW = X_BITS + 1 + W_BITS;

    initial begin
        if (MAC_STYLE != "lut" && MAC_STYLE != "dsp") $fatal(1, "qdet_dot: MAC_STYLE must be \"lut\" or \"dsp\"");
        if (TREE_LEVELS < 0) $fatal(1, "qdet_dot: TREE_LEVELS must be >= 0");
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

    // The leaves: each product sign-extended (or wrapped, when ACC_BITS < PW: the sum is taken mod 2^ACC_BITS).
    function automatic logic [N*ACC_BITS-1:0] products(input logic [N*X_BITS-1:0] x, input logic [N*W_BITS-1:0] w);
        logic [N*ACC_BITS-1:0] r;
        for (int i = 0; i < N; i = i + 1)
            r[i*ACC_BITS +: ACC_BITS] = ACC_BITS'(mul(xext(x[i*X_BITS +: X_BITS]), w[i*W_BITS +: W_BITS]));
        products = r;
    endfunction

    if (TREE_LEVELS == 0) begin : g_comb
        // Products straight into the tree, whose one register is the output.
        qdet_tree #(.N(N), .ACC_BITS(ACC_BITS), .TREE_LEVELS(0), .TAG_BITS(TAG_BITS)) u_tree (
            .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .en(en), .in_valid(in_valid), .tag_in(tag_in),
            .leaves(products(x_flat, w_flat)), .out_valid(out_valid), .tag_out(tag_out), .sum(dot)
        );
    end else begin : g_pipe
        // Stage 0: the registered products (and the beat's valid bit and tag); then the tree's stages.
        logic [N*ACC_BITS-1:0] prod;
        logic                  prod_valid;
        logic [TAG_BITS-1:0]   prod_tag;
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) prod_valid <= 1'b0;
            else if (en) prod_valid <= in_valid;
        end
        always_ff @(posedge ap_clk) begin
            if (en) prod_tag <= tag_in;
            if (en && in_valid) prod <= products(x_flat, w_flat);
        end
        qdet_tree #(.N(N), .ACC_BITS(ACC_BITS), .TREE_LEVELS(TREE_LEVELS), .TAG_BITS(TAG_BITS)) u_tree (
            .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .en(en), .in_valid(prod_valid), .tag_in(prod_tag),
            .leaves(prod), .out_valid(out_valid), .tag_out(tag_out), .sum(dot)
        );
    end
endmodule
