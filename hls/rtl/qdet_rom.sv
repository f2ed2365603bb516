// qdet_rom: a weight memory with a registered read under an enable, in the memory style the folder chose.
//
// The folder costs each weighted layer's weights in one of FINN's memory styles (block RAM, LUTRAM, UltraRAM) and
// the RTL must then ask synthesis for the same one, or the estimate and the netlist disagree. One branch per
// style, each a plain array loaded by $readmemh and read through a register (which becomes the memory's output
// register), with the vendor attribute written out literally (attributes cannot take parameter values).
//   STYLE "auto"        : synthesis decides (FINN's default; its estimate counts block RAM)
//   STYLE "block"       : block RAM
//   STYLE "distributed" : LUTRAM
//   STYLE "ultra"       : UltraRAM. UltraScale+ UltraRAM has no bitstream initialisation: simulation reads the
//                         file, a bitstream needs the weights written at run time (see hls/rtl/README.md).
// A read issued while `en` is low is held, not lost: the output register only loads under `en`.
module qdet_rom #(
    parameter int    WIDTH = 8,
    parameter int    DEPTH = 2,
    parameter FILE  = "",
    parameter STYLE = "auto"
) (
    input  logic                                      clk,
    input  logic                                      en,
    input  logic [(DEPTH > 1 ? $clog2(DEPTH) : 1)-1:0] addr,
    output logic [WIDTH-1:0]                          data
);
    // The style strings differ in length; comparing them zero-extends the shorter, which keeps them distinct.
    /* verilator lint_off WIDTHEXPAND */
    initial begin
        if (STYLE != "auto" && STYLE != "block" && STYLE != "distributed" && STYLE != "ultra")
            $fatal(1, "qdet_rom: STYLE must be auto, block, distributed or ultra");
    end

    if (STYLE == "block") begin : g_block
        (* ram_style = "block", rom_style = "block" *) logic [WIDTH-1:0] mem [0:DEPTH-1];
        initial $readmemh(FILE, mem);
        always_ff @(posedge clk) if (en) data <= mem[addr];
    end else if (STYLE == "distributed") begin : g_distributed
        (* ram_style = "distributed", rom_style = "distributed" *) logic [WIDTH-1:0] mem [0:DEPTH-1];
        initial $readmemh(FILE, mem);
        always_ff @(posedge clk) if (en) data <= mem[addr];
    end else if (STYLE == "ultra") begin : g_ultra
        (* ram_style = "ultra" *) logic [WIDTH-1:0] mem [0:DEPTH-1];
        initial $readmemh(FILE, mem);
        always_ff @(posedge clk) if (en) data <= mem[addr];
    end else begin : g_auto
        logic [WIDTH-1:0] mem [0:DEPTH-1];
        initial $readmemh(FILE, mem);
        always_ff @(posedge clk) if (en) data <= mem[addr];
    end
    /* verilator lint_on WIDTHEXPAND */
endmodule
