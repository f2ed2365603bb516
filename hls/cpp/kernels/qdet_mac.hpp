// qdet_mac: what qdet_mvau, qdet_vvau and qdet_thresholding share: a beat's lanes unpacked into native integers
// and packed back, the accumulator's two's complement wrap, and the multi-threshold activation of qdet_mt.
//
// Lanes follow hls/rtl/README.md: lane i of a beat of N lanes of B bits is bits [i*B +: B], two's complement when
// signed. For C-simulation speed a beat is cut into 64-bit words once (qdet_lanes.hpp) and every lane is then
// shifted out of those words on uint64_t; after unrolling, every shift and index is a constant, so in synthesis
// this is wiring.
//
// The activation (STEPS > 0) is qdet_mt's: ACT_BIAS + #{k : v >= T[row][p*STEPS + k]}, ties counted, no ordering
// of the thresholds assumed; value and thresholds are compared as exact (native) integers, which is the RTL's
// compare one bit wider than either operand. STEPS = 0 passes the value through and names no threshold array.
#ifndef QDET_MAC_HPP
#define QDET_MAC_HPP

#include "qdet_hls.hpp"
#include "qdet_lanes.hpp"

#include <cstdint>
#include <type_traits>

namespace qdet_mac {

// ceil(log2(n)) for n >= 1.
constexpr int clog2(int n) { return n <= 1 ? 0 : 1 + clog2((n + 1) / 2); }

// The smallest native signed integer type holding `bits`-bit two's complement values.
template <int BITS>
struct sint {
  typedef typename std::conditional<
      BITS <= 8, int8_t,
      typename std::conditional<BITS <= 16, int16_t,
                                typename std::conditional<BITS <= 32, int32_t, int64_t>::type>::type>::type type;
};

// A B-bit lane, two's complement when S, else unsigned: the signed bits that hold it and its native type.
template <int B, bool S>
struct lane {
  static_assert(B >= 1 && B <= 63, "qdet kernels take lanes of 1..63 bits");
  static constexpr int bits = S ? B : B + 1;
  typedef typename sint<bits>::type type;
};

// The native type of an exact dot product of N lanes of X_BITS (signed bits) by weights of W_BITS (signed):
// int32_t when every partial sum fits (a product needs X_BITS + W_BITS bits, for (-2^(X-1))*(-2^(W-1)); a sum of
// N of them clog2(N) more).
template <int X_BITS, int W_BITS, int N>
struct dot_type {
  typedef typename std::conditional<X_BITS + W_BITS + clog2(N) <= 32, int32_t, int64_t>::type type;
};

// The low B bits of u as a B-bit two's complement (S) or unsigned value.
template <int B, bool S>
inline int64_t extend(uint64_t u) {
  static_assert(B >= 1 && B <= 63, "qdet kernels take lanes of 1..63 bits");
  u &= ~uint64_t(0) >> (64 - B);
  if (S) {
    const uint64_t m = uint64_t(1) << (B - 1);
    return int64_t(u ^ m) - int64_t(m);
  }
  return int64_t(u);
}

// v reduced to B-bit two's complement: what a B-bit register holds after exact integer arithmetic.
template <int B>
inline int64_t wrap(int64_t v) {
  return extend<B, true>(static_cast<uint64_t>(v));
}

// The N lanes of B bits of `word` into out[0..N-1], sign-extended when S.
template <int N, int B, bool S, typename T>
inline void unpack(const ap_uint<N * B>& word, T* out) {
  constexpr int W = N * B, WORDS = (W + 63) / 64;
  uint64_t w[WORDS + 1];  // one more: a lane's second word is read only when it exists, the compiler need not know
  QDET_HLS(ARRAY_PARTITION variable = w complete)
  qdet_lanes::split<W>(word, w);  // the beat's 64-bit words, read once
  w[WORDS] = 0;
  for (int i = 0; i < N; ++i) {
    QDET_HLS(UNROLL)
    const int bit = i * B, k = bit / 64, o = bit % 64;
    uint64_t u = w[k] >> o;
    if (o + B > 64) u |= w[k + 1] << (64 - o);  // the lane straddles two words (then 0 < o < 64)
    out[i] = static_cast<T>(extend<B, S>(u));
  }
}

// v[0..N-1] packed as N lanes of B bits (each truncated to B bits, two's complement).
template <int N, int B, typename T>
inline ap_uint<N * B> pack(const T* v) {
  static_assert(B >= 1 && B <= 63, "qdet kernels take lanes of 1..63 bits");
  constexpr int W = N * B, WORDS = (W + 63) / 64;
  uint64_t w[WORDS + 1];
  QDET_HLS(ARRAY_PARTITION variable = w complete)
  for (int i = 0; i <= WORDS; ++i) {
    QDET_HLS(UNROLL)
    w[i] = 0;
  }
  const uint64_t mask = ~uint64_t(0) >> (64 - B);
  for (int i = 0; i < N; ++i) {
    QDET_HLS(UNROLL)
    const int bit = i * B, k = bit / 64, o = bit % 64;
    const uint64_t u = static_cast<uint64_t>(static_cast<int64_t>(v[i])) & mask;
    w[k] |= u << o;
    if (o + B > 64) w[k + 1] |= u >> (64 - o);
  }
  return qdet_lanes::join<W>(w);
}

// The activation of PE lane p of threshold row `row` (qdet_mt): selected on STEPS, so that a kernel without
// activation (STEPS = 0, no C::thresholds member) compiles.
template <class C, bool ACT = (C::STEPS > 0)>
struct activation;

template <class C>
struct activation<C, true> {
  static int64_t apply(int row, int p, int64_t v) {
    QDET_HLS(INLINE)
    // One threshold line (PE*STEPS thresholds) per cycle: one wide ROM word, as the RTL's T_FILE word.
    QDET_HLS(ARRAY_RESHAPE variable = C::thresholds complete dim = 2)
    int count = 0;
    for (int k = 0; k < C::STEPS; ++k) {
      QDET_HLS(UNROLL)
      count += v >= static_cast<int64_t>(C::thresholds[row][p * C::STEPS + k]);
    }
    return static_cast<int64_t>(C::ACT_BIAS) + count;
  }
};

template <class C>
struct activation<C, false> {
  static int64_t apply(int, int, int64_t v) { return v; }
};

// The output beat of threshold row `nf` after a vector's last fold (qdet_mvau, qdet_vvau): each PE's accumulator
// wrapped to ACC_BITS, through the activation, packed in OUT_BITS. `y` is the caller's (partitioned) lane buffer.
template <class C, int PE>
inline void emit(int nf, const int64_t* acc, int64_t* y, hls::stream<ap_uint<PE * C::OUT_BITS>>& out) {
  QDET_HLS(INLINE)
  for (int p = 0; p < PE; ++p) {
    QDET_HLS(UNROLL)
    y[p] = activation<C>::apply(nf, p, wrap<C::ACC_BITS>(acc[p]));
  }
  out.write(pack<PE, C::OUT_BITS>(y));
}

}  // namespace qdet_mac

#endif  // QDET_MAC_HPP
