// qdet_lanes: beats as 64-bit words and lanes as native integers, for every kernel that computes on lanes.
//
// Lane i of a beat of N lanes of B bits is bits [i*B +: B], two's complement when signed (hls/rtl/README.md). A beat
// is cut into 64-bit words once and every lane is shifted out of those words on uint64_t: after unrolling every
// shift and index is a constant (wiring in synthesis). In qdet's C simulation a beat wider than 64 bits is read and
// written through the words Xilinx's ap_private stores (a range read or write of a wide ap_uint costs ~100x more);
// elsewhere (Vitis HLS) through ap_uint ranges.
#ifndef QDET_LANES_HPP
#define QDET_LANES_HPP

#include "qdet_hls.hpp"

#include <cstdint>

namespace qdet_lanes {

// w[0..(W+63)/64-1] = the 64-bit words of x, word i = bits [64*i, 64*i + 64).
template <int W>
inline void split(const ap_uint<W>& x, uint64_t* w) {
  constexpr int N = (W + 63) / 64;
  if (W <= 64) {
    w[0] = x.to_uint64();
    return;
  }
  for (int i = 0; i < N; ++i) {
    QDET_HLS(UNROLL)
#ifdef QDET_CSIM_STREAMS
    w[i] = x.V.get_pVal(i);
#else
    const int lo = 64 * i, hi = lo + 63 < W ? lo + 63 : W - 1;
    w[i] = x.range(hi, lo).to_uint64();
#endif
  }
}

// The W-bit beat of words w (their bits above W ignored).
template <int W>
inline ap_uint<W> join(const uint64_t* w) {
  constexpr int N = (W + 63) / 64;
  ap_uint<W> r = w[0];
  if (W <= 64) return r;
  for (int i = 1; i < N; ++i) {
    QDET_HLS(UNROLL)
#ifdef QDET_CSIM_STREAMS
    r.V.get_pVal(i) = w[i];
#else
    const int lo = 64 * i, hi = lo + 63 < W ? lo + 63 : W - 1;
    r.range(hi, lo) = w[i];
#endif
  }
#ifdef QDET_CSIM_STREAMS
  r.V.clearUnusedBits();
#endif
  return r;
}

// Bits [lo, lo + b) of words w, 1 <= b <= 64.
inline uint64_t field(const uint64_t* w, int lo, int b) {
  const int k = lo / 64, o = lo % 64;
  uint64_t u = w[k] >> o;
  if (o + b > 64) u |= w[k + 1] << (64 - o);  // the field straddles two words (then 0 < o < 64)
  return b == 64 ? u : u & ((uint64_t(1) << b) - 1);
}

// The low b bits of u (1 <= b <= 64) ORed into bits [lo, lo + b) of words w, which hold zeros there.
inline void put(uint64_t* w, int lo, int b, uint64_t u) {
  if (b < 64) u &= (uint64_t(1) << b) - 1;
  const int k = lo / 64, o = lo % 64;
  w[k] |= u << o;
  if (o + b > 64) w[k + 1] |= u >> (64 - o);
}

// n bits from bit `from` of src into bit `to` of dst (zeros there), 64 at a time.
inline void copy(uint64_t* dst, int to, const uint64_t* src, int from, int n) {
  for (int i = 0; i < n; i += 64) {
    QDET_HLS(UNROLL)
    const int b = n - i < 64 ? n - i : 64;
    put(dst, to + i, b, field(src, from + i, b));
  }
}

// The N lanes of B bits of `word` into v[0..N-1], sign-extended when S.
template <int N, int B, bool S>
inline void unpack(const ap_uint<N * B>& word, int64_t* v) {
  static_assert(B >= 1 && B <= 63, "qdet kernels take lanes of 1..63 bits");
  uint64_t w[(N * B + 63) / 64 + 1];  // one word more: a lane's second word is read only when it exists
  QDET_HLS(ARRAY_PARTITION variable = w complete)
  split<N * B>(word, w);
  const uint64_t sign = uint64_t(1) << (B - 1);
  for (int i = 0; i < N; ++i) {
    QDET_HLS(UNROLL)
    const uint64_t u = field(w, i * B, B);
    v[i] = S ? static_cast<int64_t>(u ^ sign) - static_cast<int64_t>(sign) : static_cast<int64_t>(u);
  }
}

// v[0..N-1] packed as N lanes of B bits, each truncated to B bits (two's complement).
template <int N, int B>
inline ap_uint<N * B> pack(const int64_t* v) {
  static_assert(B >= 1 && B <= 63, "qdet kernels take lanes of 1..63 bits");
  constexpr int WORDS = (N * B + 63) / 64;
  uint64_t w[WORDS + 1];
  QDET_HLS(ARRAY_PARTITION variable = w complete)
  for (int i = 0; i <= WORDS; ++i) {
    QDET_HLS(UNROLL)
    w[i] = 0;
  }
  for (int i = 0; i < N; ++i) {
    QDET_HLS(UNROLL)
    put(w, i * B, B, static_cast<uint64_t>(v[i]));
  }
  return join<N * B>(w);
}

}  // namespace qdet_lanes

#endif  // QDET_LANES_HPP
