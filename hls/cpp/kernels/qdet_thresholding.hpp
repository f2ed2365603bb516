// qdet_thresholding: FINN's Thresholding, the standalone multi-threshold activation, bit for bit the RTL
// qdet_thresholding (hls/rtl/README.md).
//
// out[c] = ACT_BIAS + #{k : x[c] >= T[c][k]} truncated to OUT_BITS, for C channels streamed channel fastest:
// CF = C/PE beats per pixel, beat cf holds channels cf*PE + p. Inputs are IN_BITS lanes, two's complement when
// IN_SIGNED; C::thresholds[CF][PE*STEPS] (line cf, lane p*STEPS + k = T[cf*PE + p][k]) hold the generator's
// integer thresholds, ceil'd and clipped to [min_in, max_in + 1] (the RTL's IN_BITS+1-bit T_FILE values, which
// compare with x exactly as native integers). One beat in, one beat out, per cycle; nothing is buffered.
#ifndef QDET_THRESHOLDING_HPP
#define QDET_THRESHOLDING_HPP

#include "qdet_hls.hpp"
#include "qdet_mac.hpp"

template <class C>
void qdet_thresholding(hls::stream<ap_uint<C::PE * C::IN_BITS>>& in,
                       hls::stream<ap_uint<C::PE * C::OUT_BITS>>& out) {
  constexpr int PE = C::PE, CF = C::C / C::PE;
  constexpr bool IN_SIGNED = C::IN_SIGNED != 0;
  static_assert(C::C % C::PE == 0, "qdet_thresholding: PE must divide C");
  static_assert(C::STEPS >= 1, "qdet_thresholding: at least one threshold per channel");
  static_assert(C::IN_BEATS % CF == 0 && C::OUT_BEATS == C::IN_BEATS,
                "qdet_thresholding: a frame is whole pixels, one output beat per input beat");
  typedef typename qdet_mac::lane<C::IN_BITS, IN_SIGNED>::type x_t;

  x_t x[PE];
  QDET_HLS(ARRAY_PARTITION variable = x complete)
  int64_t y[PE];
  QDET_HLS(ARRAY_PARTITION variable = y complete)

  int cf = 0;
  for (int i = 0; i < C::IN_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    qdet_mac::unpack<PE, C::IN_BITS, IN_SIGNED>(in.read(), x);
    for (int p = 0; p < PE; ++p) {
      QDET_HLS(UNROLL)
      y[p] = qdet_mac::activation<C>::apply(cf, p, x[p]);
    }
    out.write(qdet_mac::pack<PE, C::OUT_BITS>(y));
    if (++cf == CF) cf = 0;
  }
}

#endif  // QDET_THRESHOLDING_HPP
