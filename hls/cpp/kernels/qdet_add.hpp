// qdet_add: FINN ElementwiseAdd of two streams of equal shape: lane p of output beat k = lhs[p] + rhs[p] of input
// beats k (PE lanes; each operand sign- or zero-extended by its signedness), the low OUT_BITS bits of the exact sum
// (OUT_SIGNED documents the type only). A frame is IN_BEATS beats on each input and on the output.
//
// One beat of each input per output beat: whichever input has its beat already is taken first, then the other is
// waited for (the RTL's inputs each pass a skid and are consumed in lockstep), so a join never holds more than one
// beat of either input.
#ifndef QDET_ADD_HPP
#define QDET_ADD_HPP

#include "qdet_hls.hpp"

#include <cstdint>

#include "qdet_lanes.hpp"

template <class C>
void qdet_add(hls::stream<ap_uint<C::PE * C::LHS_BITS>>& in0, hls::stream<ap_uint<C::PE * C::RHS_BITS>>& in1,
              hls::stream<ap_uint<C::PE * C::OUT_BITS>>& out) {
  static_assert(C::OUT_BEATS == C::IN_BEATS, "qdet_add: one output beat per pair of input beats");
  for (int i = 0; i < C::IN_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    ap_uint<C::PE * C::LHS_BITS> a = 0;
    ap_uint<C::PE * C::RHS_BITS> b = 0;
    const bool have_a = in0.read_nb(a);
    const bool have_b = in1.read_nb(b);
    if (!have_a) a = in0.read();
    if (!have_b) b = in1.read();
    int64_t l[C::PE], r[C::PE], s[C::PE];
    QDET_HLS(ARRAY_PARTITION variable = l complete)
    QDET_HLS(ARRAY_PARTITION variable = r complete)
    QDET_HLS(ARRAY_PARTITION variable = s complete)
    qdet_lanes::unpack<C::PE, C::LHS_BITS, C::LHS_SIGNED != 0>(a, l);
    qdet_lanes::unpack<C::PE, C::RHS_BITS, C::RHS_SIGNED != 0>(b, r);
    for (int p = 0; p < C::PE; ++p) {
      QDET_HLS(UNROLL)
      s[p] = l[p] + r[p];
    }
    out.write(qdet_lanes::pack<C::PE, C::OUT_BITS>(s));
  }
}

#endif  // QDET_ADD_HPP
