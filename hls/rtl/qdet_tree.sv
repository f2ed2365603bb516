// qdet_tree: a balanced adder tree over N leaves, optionally pipelined (the back half of qdet_dot and
// qdet_packdot).
//
// sum = the N leaves (leaf i at leaves[i*ACC_BITS +: ACC_BITS]) added in ACC_BITS two's complement, for the leaves
// presented with `in_valid` under the caller's pipeline enable `en`; it appears LATENCY enabled cycles later with
// `out_valid` and the caller's `tag_in` of that beat. The leaves are padded with zeros to a power of two: the tree
// is D = clog2(N) levels deep. TREE_LEVELS = 0: the whole tree is combinational into the output register (LATENCY
// 1); L > 0: every L levels end in a register (LATENCY max(1, ceil(D / L))). Every register stage sits under `en`
// and loads only when its input stage is valid.
//
// The tree is built node by node, each level's sums on `keep` wires: left to itself, yosys merges a whole adder
// tree into one multi-operand sum and maps it as a compressor tree of LUT full adders, which costs ~1.7x the LUTs
// of these two-input carry-chain adders (measured, 72 8-bit leaves on xcup: 1,078 against 635 LUTs).
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

    initial begin
        if (TREE_LEVELS < 0) $fatal(1, "qdet_tree: TREE_LEVELS must be >= 0");
    end

    // The valid bits and tags of the CHUNKS register stages, shift registers; stage CHUNKS-1 is the output.
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

    // Level l holds N2 >> l nodes: level 0 the zero-padded leaves, node i of level l >= 1 the sum of nodes 2i and
    // 2i+1 of level l-1, registered when l ends a stage of TREE_LEVELS levels below the root (stage l/L - 1,
    // loading when the stage below it is valid). The root goes into `sum`, the last stage's register.
    for (genvar l = 0; l <= D; l = l + 1) begin : g_level
        localparam int M = N2 >> l;
        logic [M*ACC_BITS-1:0] nodes;
        if (l == 0) begin : g_leaves
            assign nodes = (M*ACC_BITS)'(leaves);
        end else begin : g_sums
            (* keep *) logic [M*ACC_BITS-1:0] sums;
            for (genvar i = 0; i < M; i = i + 1) begin : g_node
                assign sums[i*ACC_BITS +: ACC_BITS] = g_level[l - 1].nodes[2*i*ACC_BITS +: ACC_BITS]
                                                      + g_level[l - 1].nodes[(2*i+1)*ACC_BITS +: ACC_BITS];
            end
            if (TREE_LEVELS > 0 && l % TREE_LEVELS == 0 && l < D) begin : g_reg
                localparam int STAGE = l / TREE_LEVELS - 1;
                logic load;
                if (STAGE == 0) begin : g_in
                    assign load = in_valid;
                end else begin : g_prev
                    assign load = valid[STAGE - 1];
                end
                always_ff @(posedge ap_clk) begin
                    if (en && load) nodes <= sums;
                end
            end else begin : g_wire
                assign nodes = sums;
            end
        end
    end

    logic last_load;
    if (CHUNKS == 1) begin : g_one
        assign last_load = in_valid;
    end else begin : g_many
        assign last_load = valid[CHUNKS - 2];
    end
    always_ff @(posedge ap_clk) begin
        if (en && last_load) sum <= g_level[D].nodes[ACC_BITS-1:0];
    end
endmodule
