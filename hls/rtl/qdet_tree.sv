// qdet_tree: a balanced adder tree over N leaves, optionally pipelined (the back half of qdet_dot and
// qdet_packdot).
//
// sum = the N leaves (leaf i at leaves[i*ACC_BITS +: ACC_BITS]) added in ACC_BITS two's complement, for the leaves
// presented with `in_valid` under the caller's pipeline enable `en`; it appears LATENCY enabled cycles later with
// `out_valid` and the caller's `tag_in` of that beat. The leaves are padded with zeros to a power of two: the tree
// is D = clog2(N) levels deep. TREE_LEVELS = 0: the whole tree is combinational into the output register (LATENCY
// 1); L > 0: every L levels end in a register (LATENCY max(1, ceil(D / L))). Every register stage sits under `en`
// and loads only when its input stage is valid, so a simulator adds each level once per beat.
module qdet_tree #(
    parameter int N = 1,
    parameter int ACC_BITS = 16,
    parameter int TREE_LEVELS = 0,
    parameter int TAG_BITS = 1
) (
    input  logic                  ap_clk,
    input  logic                  ap_rst_n,
    input  logic                  en,
    input  logic                  in_valid,
    input  logic [TAG_BITS-1:0]   tag_in,
    input  logic [N*ACC_BITS-1:0] leaves,
    output logic                  out_valid,
    output logic [TAG_BITS-1:0]   tag_out,
    output logic [ACC_BITS-1:0]   sum
);
    localparam int N2 = N > 1 ? (1 << $clog2(N)) : 1;
    localparam int D = N > 1 ? $clog2(N) : 0;
    localparam int CHUNKS = TREE_LEVELS > 0 && D > 0 ? (D + TREE_LEVELS - 1) / TREE_LEVELS : 1;
    localparam int LPS = TREE_LEVELS > 0 ? TREE_LEVELS : (D > 0 ? D : 1);  // levels per register stage
    localparam int VW = N2 * ACC_BITS;  // one stage's nodes, node i at [i*ACC_BITS +: ACC_BITS]

    initial begin
        if (TREE_LEVELS < 0) $fatal(1, "qdet_tree: TREE_LEVELS must be >= 0");
    end

    // `levels` adder levels of the tree, starting above level `from` (level 0: the leaves): node i of a level is
    // node 2i + node 2i+1 of the one below. Done in place: node i is written after nodes 2i and 2i+1 are read.
    function automatic logic [VW-1:0] reduce(input logic [VW-1:0] v, input int from, input int levels);
        logic [VW-1:0] r;
        r = v;
        for (int l = from; l < from + levels; l = l + 1)
            for (int i = 0; i < (N2 >> (l + 1)); i = i + 1)
                r[i*ACC_BITS +: ACC_BITS] = r[2*i*ACC_BITS +: ACC_BITS] + r[(2*i+1)*ACC_BITS +: ACC_BITS];
        reduce = r;
    endfunction

    // The valid bits and tags of the CHUNKS stages, shift registers; stage CHUNKS-1 is the output.
    logic [CHUNKS-1:0]          valid;
    logic [CHUNKS*TAG_BITS-1:0] tags;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            valid <= '0;
        end else if (en) begin
            valid <= CHUNKS'({valid, in_valid});
        end
    end

    always_ff @(posedge ap_clk) begin
        if (en) tags <= (CHUNKS*TAG_BITS)'({tags, tag_in});
    end

    assign out_valid = valid[CHUNKS-1];
    assign tag_out = tags[(CHUNKS-1)*TAG_BITS +: TAG_BITS];

    function automatic logic [ACC_BITS-1:0] root(input logic [VW-1:0] v, input int from, input int levels);
        logic [VW-1:0] r;
        r = reduce(v, from, levels);
        root = r[ACC_BITS-1:0];
    endfunction

    // Stage c takes the nodes left by stage c-1 (stage 0: the zero-padded leaves) up LPS levels (the last stage:
    // up to the root, into `sum`). The levels are added inside the register's always_ff, so a simulator evaluates
    // them once per valid beat rather than on every change of the leaves.
    for (genvar c = 0; c < CHUNKS; c = c + 1) begin : g_chunk
        localparam int FROM = c * LPS;
        localparam int LEVELS = D - FROM < LPS ? D - FROM : LPS;
        logic [VW-1:0] nodes;
        logic          load;
        if (c == 0) begin : g_first
            assign nodes = VW'(leaves);
            assign load = in_valid;
        end else begin : g_next
            assign nodes = g_chunk[c - 1].r;
            assign load = valid[c - 1];
        end
        logic [VW-1:0] r;
        if (c < CHUNKS - 1) begin : g_mid
            always_ff @(posedge ap_clk) begin
                if (en && load) r <= reduce(nodes, FROM, LEVELS);
            end
        end else begin : g_last
            assign r = '0;
            always_ff @(posedge ap_clk) begin
                if (en && load) sum <= root(nodes, FROM, LEVELS);
            end
        end
    end
endmodule
