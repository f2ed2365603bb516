// qdet_maxpool: FINN Pool with Function=MaxPool over the depthwise sliding-window stream (qdet_swg DEPTHWISE=1,
// SIMD = PE): per output pixel and channel fold, K = K_H*K_W beats (the window positions), lane p = channel
// f*PE + p; out: one beat per K input beats, lane p = the window's maximum (two's complement compare when SIGNED).
//
// Buffers one window's running maxima, as the RTL. OUT_PIXELS does not change the logic (the per-window stream
// repeats; kept for cycle estimates): a call takes IN_BEATS = OUT_BEATS * K beats.
#ifndef QDET_MAXPOOL_HPP
#define QDET_MAXPOOL_HPP

#include "qdet_hls.hpp"

#include <cstdint>

#include "qdet_lanes.hpp"

template <class C>
void qdet_maxpool(hls::stream<ap_uint<C::PE * C::BITS>>& in, hls::stream<ap_uint<C::PE * C::BITS>>& out) {
  static_assert(C::C % C::PE == 0, "qdet_maxpool: PE must divide C");
  static_assert(C::K >= 1 && C::IN_BEATS == C::OUT_BEATS * C::K, "qdet_maxpool: IN_BEATS must be OUT_BEATS * K");
  static_assert(C::OUT_BEATS % (C::C / C::PE) == 0, "qdet_maxpool: OUT_BEATS must be whole pixels");
  int64_t best[C::PE];
  QDET_HLS(ARRAY_PARTITION variable = best complete)
  int k = 0;
  for (int i = 0; i < C::IN_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    int64_t x[C::PE];
    QDET_HLS(ARRAY_PARTITION variable = x complete)
    qdet_lanes::unpack<C::PE, C::BITS, C::SIGNED != 0>(in.read(), x);
    for (int p = 0; p < C::PE; ++p) {
      QDET_HLS(UNROLL)
      best[p] = (k == 0 || x[p] > best[p]) ? x[p] : best[p];
    }
    if (k == C::K - 1) {
      out.write(qdet_lanes::pack<C::PE, C::BITS>(best));
      k = 0;
    } else {
      ++k;
    }
  }
}

#endif  // QDET_MAXPOOL_HPP
