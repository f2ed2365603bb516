// qdet_avgpool: FINN Pool with Function=QuantAvgPool (window sum >> SHIFT) or AccPool (SHIFT = 0, the plain sum),
// over the depthwise sliding-window stream, exactly as qdet_maxpool: K beats per output beat, lane p = channel
// f*PE + p. Output lane p = (sum of the window) >> SHIFT, arithmetic when SIGNED (floor division by 2^SHIFT, numpy's
// right_shift, FINN's python model), its low OUT_BITS bits emitted (the RTL's and FINN HLS' cast to the output
// type; a signed result outside the OUT_BITS range wraps there, FINN's python keeps it: same packed bits).
//
// The sum is exact in int64_t (the RTL's accumulator holds every window's sum exactly). Buffers one window's
// running sums, as the RTL. OUT_PIXELS does not change the logic: a call takes IN_BEATS = OUT_BEATS * K beats.
#ifndef QDET_AVGPOOL_HPP
#define QDET_AVGPOOL_HPP

#include "qdet_hls.hpp"

#include <cstdint>

#include "qdet_lanes.hpp"

template <class C>
void qdet_avgpool(hls::stream<ap_uint<C::PE * C::IN_BITS>>& in, hls::stream<ap_uint<C::PE * C::OUT_BITS>>& out) {
  static_assert(C::C % C::PE == 0, "qdet_avgpool: PE must divide C");
  static_assert(C::K >= 1 && C::IN_BEATS == C::OUT_BEATS * C::K, "qdet_avgpool: IN_BEATS must be OUT_BEATS * K");
  static_assert(C::OUT_BEATS % (C::C / C::PE) == 0, "qdet_avgpool: OUT_BEATS must be whole pixels");
  static_assert(C::SHIFT >= 0 && C::SHIFT < 63, "qdet_avgpool: SHIFT out of range");
  int64_t sum[C::PE];
  QDET_HLS(ARRAY_PARTITION variable = sum complete)
  int k = 0;
  for (int i = 0; i < C::IN_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    int64_t x[C::PE];
    QDET_HLS(ARRAY_PARTITION variable = x complete)
    qdet_lanes::unpack<C::PE, C::IN_BITS, C::SIGNED != 0>(in.read(), x);
    for (int p = 0; p < C::PE; ++p) {
      QDET_HLS(UNROLL)
      sum[p] = (k == 0 ? 0 : sum[p]) + x[p];
    }
    if (k == C::K - 1) {
      int64_t v[C::PE];
      QDET_HLS(ARRAY_PARTITION variable = v complete)
      for (int p = 0; p < C::PE; ++p) {
        QDET_HLS(UNROLL)
        v[p] = sum[p] >> C::SHIFT;  // arithmetic on a negative sum (g++ and Vitis HLS): floor division
      }
      out.write(qdet_lanes::pack<C::PE, C::OUT_BITS>(v));
      k = 0;
    } else {
      ++k;
    }
  }
}

#endif  // QDET_AVGPOOL_HPP
