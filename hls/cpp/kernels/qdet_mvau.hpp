// qdet_mvau: FINN's MVAU (binaryXnorMode = 0), matrix-vector product with optional multi-threshold activation,
// bit for bit the RTL qdet_mvau (hls/rtl/README.md).
//
// Per input vector x (MW elements, SF = MW/SIMD beats of SIMD lanes): acc[c] = sum_i x[i]*W[i][c], exact and then
// taken in ACC_BITS two's complement (the RTL's accumulator register); out[c] = ACT_BIAS + #{k : acc[c] >= T[c][k]}
// (STEPS > 0) or acc[c] (STEPS = 0, OUT_BITS = ACC_BITS), truncated to OUT_BITS. NF = MH/PE output beats per vector,
// beat nf holds channels nf*PE + p.
//
// Structure (finn-hlslib's Matrix_Vector_Activate_Batch): one pipelined loop of NF*SF iterations per vector, the
// vectors of the frame one after the other in the same loop (no pipeline drain between them). Pass nf = 0 reads
// the vector's SF beats from the stream, unpacked once into the local vector buffer; passes nf > 0 reuse the
// buffer. Iteration (nf, sf) adds the SIMD products of each PE to that PE's accumulator, with weight line
// nf*SF + sf (C::weights[NF*SF][PE*SIMD], lane p*SIMD + s = W[sf*SIMD + s][nf*PE + p]); iteration sf = SF-1 applies
// the activation with threshold line nf and writes one output beat. Only one vector is buffered, as in the RTL.
#ifndef QDET_MVAU_HPP
#define QDET_MVAU_HPP

#include "qdet_hls.hpp"
#include "qdet_mac.hpp"

template <class C>
void qdet_mvau(hls::stream<ap_uint<C::SIMD * C::IN_BITS>>& in, hls::stream<ap_uint<C::PE * C::OUT_BITS>>& out) {
  constexpr int SIMD = C::SIMD, PE = C::PE, SF = C::MW / C::SIMD, NF = C::MH / C::PE;
  constexpr bool IN_SIGNED = C::IN_SIGNED != 0;
  static_assert(C::MW % C::SIMD == 0 && C::MH % C::PE == 0, "qdet_mvau: SIMD must divide MW and PE divide MH");
  static_assert(C::IN_BEATS % SF == 0, "qdet_mvau: a frame is whole vectors of MW/SIMD beats");
  static_assert(C::OUT_BEATS == C::IN_BEATS / SF * NF, "qdet_mvau: OUT_BEATS must be MH/PE per vector");
  static_assert(C::STEPS > 0 || C::OUT_BITS == C::ACC_BITS, "qdet_mvau: OUT_BITS = ACC_BITS without activation");
  constexpr int ITERS = C::IN_BEATS / SF * NF * SF;
  typedef typename qdet_mac::lane<C::IN_BITS, IN_SIGNED>::type x_t;
  typedef typename qdet_mac::dot_type<qdet_mac::lane<C::IN_BITS, IN_SIGNED>::bits, C::W_BITS, SIMD>::type dot_t;

  // One weight line (PE*SIMD weights) per cycle: each line is one wide ROM word, as the RTL's W_FILE word (the
  // threshold lines likewise, in qdet_mac::activation).
  QDET_HLS(ARRAY_RESHAPE variable = C::weights complete dim = 2)
  x_t buf[SF][SIMD];  // the current input vector (the RTL's SF-entry vector buffer, one beat per entry)
  QDET_HLS(ARRAY_PARTITION variable = buf complete dim = 2)
  int64_t acc[PE] = {};  // (zeroed again at every vector's first fold; the initialiser only quiets g++)
  QDET_HLS(ARRAY_PARTITION variable = acc complete)
  int64_t y[PE];
  QDET_HLS(ARRAY_PARTITION variable = y complete)

  int nf = 0, sf = 0;
  for (int i = 0; i < ITERS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    if (nf == 0) qdet_mac::unpack<SIMD, C::IN_BITS, IN_SIGNED>(in.read(), buf[sf]);
    const typename C::weights_t* w = C::weights[nf * SF + sf];
    for (int p = 0; p < PE; ++p) {
      QDET_HLS(UNROLL)
      dot_t d = 0;
      for (int s = 0; s < SIMD; ++s) {
        QDET_HLS(UNROLL)
        d += static_cast<dot_t>(buf[sf][s]) * static_cast<dot_t>(w[p * SIMD + s]);
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

#endif  // QDET_MVAU_HPP
