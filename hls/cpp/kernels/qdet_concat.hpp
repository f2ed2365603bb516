// qdet_concat: FINN StreamingConcat of two inputs on the channel axis: per pixel F0 = C0/SIMD beats of in0, then
// F1 = C1/SIMD beats of in1, each element sign- or zero-extended (by its input's signedness) to OUT_BITS. A frame
// is IN_BEATS beats of in0 (IN_BEATS / F0 pixels).
//
// Inputs are read in exactly that order and only when their beat is due (the RTL's unselected input is never
// ready): in1 waits while a pixel's in0 part streams, and the other way round.
#ifndef QDET_CONCAT_HPP
#define QDET_CONCAT_HPP

#include "qdet_hls.hpp"

#include <cstdint>

#include "qdet_lanes.hpp"

template <class C>
void qdet_concat(hls::stream<ap_uint<C::SIMD * C::IN0_BITS>>& in0, hls::stream<ap_uint<C::SIMD * C::IN1_BITS>>& in1,
                 hls::stream<ap_uint<C::SIMD * C::OUT_BITS>>& out) {
  constexpr int F0 = C::C0 / C::SIMD, F1 = C::C1 / C::SIMD;
  static_assert(C::C0 % C::SIMD == 0 && C::C1 % C::SIMD == 0, "qdet_concat: SIMD must divide C0 and C1");
  static_assert(C::IN_BEATS % F0 == 0, "qdet_concat: IN_BEATS must be whole pixels of in0");
  static_assert(C::OUT_BEATS == C::IN_BEATS / F0 * (F0 + F1), "qdet_concat: OUT_BEATS must be the pixels' F0 + F1");
  int j = 0;  // beat within the output pixel
  for (int i = 0; i < C::OUT_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    int64_t v[C::SIMD];
    QDET_HLS(ARRAY_PARTITION variable = v complete)
    if (j < F0) {
      qdet_lanes::unpack<C::SIMD, C::IN0_BITS, C::IN0_SIGNED != 0>(in0.read(), v);
    } else {
      qdet_lanes::unpack<C::SIMD, C::IN1_BITS, C::IN1_SIGNED != 0>(in1.read(), v);
    }
    out.write(qdet_lanes::pack<C::SIMD, C::OUT_BITS>(v));
    j = j == F0 + F1 - 1 ? 0 : j + 1;
  }
}

#endif  // QDET_CONCAT_HPP
