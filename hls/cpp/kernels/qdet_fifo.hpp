// qdet_fifo: one frame of WIDTH-bit beats passed through (IN_BEATS of them).
//
// In the generated top the FIFO's capacity is the depth of its input stream (hls::stream<T, DEPTH>, #pragma HLS
// STREAM depth=DEPTH), exactly the RTL qdet_fifo's DEPTH; this process only moves the beats on, one per cycle.
#ifndef QDET_FIFO_HPP
#define QDET_FIFO_HPP

#include "qdet_hls.hpp"

template <class C>
void qdet_fifo(hls::stream<ap_uint<C::WIDTH>>& in, hls::stream<ap_uint<C::WIDTH>>& out) {
  for (int i = 0; i < C::IN_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    out.write(in.read());
  }
}

#endif  // QDET_FIFO_HPP
