// qdet_accpool: FINN GlobalAccPool: per frame (PIXELS = H*W pixels, NHWC, CF = C/PE beats a pixel, beat f lane p =
// channel f*PE + p) one output pixel of CF beats, lane p = the sum of channel f*PE + p over the frame, its low
// OUT_BITS bits (FINN's output type holds every sum; two's complement for a signed input).
//
// The running sums are the RTL's CF-entry memory of PE sums (exact in int64_t); pixel 0 starts them from zero. The
// last pixel's sums go out as that pixel streams in (output beat f right after input beat f of the last pixel), as
// the RTL does: no read-out pass.
#ifndef QDET_ACCPOOL_HPP
#define QDET_ACCPOOL_HPP

#include "qdet_hls.hpp"

#include <cstdint>

#include "qdet_lanes.hpp"

template <class C>
void qdet_accpool(hls::stream<ap_uint<C::PE * C::IN_BITS>>& in, hls::stream<ap_uint<C::PE * C::OUT_BITS>>& out) {
  constexpr int CF = C::C / C::PE;
  static_assert(C::C % C::PE == 0, "qdet_accpool: PE must divide C");
  static_assert(C::IN_BEATS == C::PIXELS * CF, "qdet_accpool: IN_BEATS must be one frame (PIXELS * C/PE)");
  static_assert(C::OUT_BEATS == CF, "qdet_accpool: OUT_BEATS must be one pixel (C/PE)");
  int64_t acc[CF][C::PE];
  QDET_HLS(ARRAY_PARTITION variable = acc complete dim = 2)
  int f = 0, px = 0;
  for (int i = 0; i < C::IN_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    int64_t x[C::PE];
    QDET_HLS(ARRAY_PARTITION variable = x complete)
    qdet_lanes::unpack<C::PE, C::IN_BITS, C::SIGNED != 0>(in.read(), x);
    for (int p = 0; p < C::PE; ++p) {
      QDET_HLS(UNROLL)
      acc[f][p] = (px == 0 ? 0 : acc[f][p]) + x[p];
    }
    if (px == C::PIXELS - 1) out.write(qdet_lanes::pack<C::PE, C::OUT_BITS>(acc[f]));
    if (f != CF - 1) {
      ++f;
    } else {
      f = 0;
      ++px;
    }
  }
}

#endif  // QDET_ACCPOOL_HPP
