// The generated top's AXI-Stream ports: the DMA-facing words (ap_axiu, a power-of-two number of bytes wide, TLAST)
// to and from the links' exact-width beats, exactly as the RTL top pads its outer ports.
//
// Input: bits above LINK_W are ignored, TLAST is ignored (a frame is BEATS beats). Output: bits above LINK_W are
// zero, TKEEP/TSTRB all ones, TLAST on the frame's last beat (what an AXI DMA's S2MM channel needs to end a
// transfer per frame; the RTL path adds it in its Vivado shell).
#ifndef QDET_AXIS_HPP
#define QDET_AXIS_HPP

#include "qdet_hls.hpp"
#include "ap_axi_sdata.h"

template <int PORT_W, int LINK_W, int BEATS>
void qdet_axis_in(hls::stream<ap_axiu<PORT_W, 0, 0, 0>>& port, hls::stream<ap_uint<LINK_W>>& link) {
  static_assert(LINK_W <= PORT_W, "the port must hold the link's beat");
  for (int i = 0; i < BEATS; ++i) {
    QDET_HLS(PIPELINE II=1)
    const ap_axiu<PORT_W, 0, 0, 0> word = port.read();
    link.write(ap_uint<LINK_W>(word.data(LINK_W - 1, 0)));
  }
}

template <int LINK_W, int PORT_W, int BEATS>
void qdet_axis_out(hls::stream<ap_uint<LINK_W>>& link, hls::stream<ap_axiu<PORT_W, 0, 0, 0>>& port) {
  static_assert(LINK_W <= PORT_W, "the port must hold the link's beat");
  for (int i = 0; i < BEATS; ++i) {
    QDET_HLS(PIPELINE II=1)
    ap_axiu<PORT_W, 0, 0, 0> word;
    word.data = 0;
    word.data(LINK_W - 1, 0) = link.read();
    word.keep = -1;
    word.strb = -1;
    word.last = (i == BEATS - 1);
    port.write(word);
  }
}

#endif  // QDET_AXIS_HPP
