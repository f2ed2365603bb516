// qdet_vvau: FINN's VVAU (VectorVectorActivation, binaryXnorMode = 0), the depthwise convolution's per-channel dot
// products with optional multi-threshold activation, bit for bit the RTL qdet_vvau (hls/rtl/README.md).
//
// Per output pixel: acc[c] = sum_k x[c][k]*W[c][k] over the K = K_H*K_W window positions, exact and then taken in
// ACC_BITS two's complement (the RTL's accumulator register); out[c] = ACT_BIAS + #{j : acc[c] >= T[c][j]}
// (STEPS > 0) or acc[c] (STEPS = 0, OUT_BITS = ACC_BITS), truncated to OUT_BITS. NF = C/PE, SF = K/SIMD.
//
// Input: NF*SF beats per pixel (the depthwise sliding window's folded order), beat nf*SF + sf, lane s*PE + p holds
// x[nf*PE + p][sf*SIMD + s]. Weights C::weights[NF*SF][PE*SIMD]: line nf*SF + sf, lane p*SIMD + s =
// W[nf*PE + p][sf*SIMD + s] (window position major in the beat, PE major in the weight line: the regrouping is
// wiring). Every input beat is used once, so there is no buffer: one pipelined loop over the frame's beats, the
// SF beats of channel group nf accumulate per PE, and the last one (sf = SF-1) writes output beat nf with threshold
// line nf.
#ifndef QDET_VVAU_HPP
#define QDET_VVAU_HPP

#include "qdet_hls.hpp"
#include "qdet_mac.hpp"

template <class C>
void qdet_vvau(hls::stream<ap_uint<C::SIMD * C::PE * C::IN_BITS>>& in,
               hls::stream<ap_uint<C::PE * C::OUT_BITS>>& out) {
  constexpr int SIMD = C::SIMD, PE = C::PE, NF = C::C / C::PE, SF = C::K / C::SIMD;
  constexpr bool IN_SIGNED = C::IN_SIGNED != 0;
  static_assert(C::C % C::PE == 0 && C::K % C::SIMD == 0, "qdet_vvau: PE must divide C and SIMD divide K");
  static_assert(C::IN_BEATS % (NF * SF) == 0, "qdet_vvau: a frame is whole pixels of C*K/(PE*SIMD) beats");
  static_assert(C::OUT_BEATS == C::IN_BEATS / SF, "qdet_vvau: OUT_BEATS must be C/PE per pixel");
  static_assert(C::STEPS > 0 || C::OUT_BITS == C::ACC_BITS, "qdet_vvau: OUT_BITS = ACC_BITS without activation");
  typedef typename qdet_mac::lane<C::IN_BITS, IN_SIGNED>::type x_t;
  typedef typename qdet_mac::dot_type<qdet_mac::lane<C::IN_BITS, IN_SIGNED>::bits, C::W_BITS, SIMD>::type dot_t;

  // One weight line (PE*SIMD weights) per cycle: one wide ROM word, as the RTL's W_FILE word.
  QDET_HLS(ARRAY_RESHAPE variable = C::weights complete dim = 2)
  x_t x[SIMD * PE];
  QDET_HLS(ARRAY_PARTITION variable = x complete)
  int64_t acc[PE] = {};  // (zeroed again at every vector's first fold; the initialiser only quiets g++)
  QDET_HLS(ARRAY_PARTITION variable = acc complete)
  int64_t y[PE];
  QDET_HLS(ARRAY_PARTITION variable = y complete)

  int nf = 0, sf = 0;
  for (int i = 0; i < C::IN_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    qdet_mac::unpack<SIMD * PE, C::IN_BITS, IN_SIGNED>(in.read(), x);
    const typename C::weights_t* w = C::weights[nf * SF + sf];
    for (int p = 0; p < PE; ++p) {
      QDET_HLS(UNROLL)
      dot_t d = 0;
      for (int s = 0; s < SIMD; ++s) {
        QDET_HLS(UNROLL)
        d += static_cast<dot_t>(x[s * PE + p]) * static_cast<dot_t>(w[p * SIMD + s]);
      }
      acc[p] = (sf == 0 ? int64_t(0) : acc[p]) + d;
    }
    if (sf == SF - 1) qdet_mac::emit<C, PE>(nf, acc, y, out);
    if (++sf == SF) {
      sf = 0;
      if (++nf == NF) nf = 0;
    }
  }
}

#endif  // QDET_VVAU_HPP
