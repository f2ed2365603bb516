// qdet_swg: the sliding-window (convolution input) generator, FINN ConvolutionInputGenerator semantics, one
// (IFM_H, IFM_W, C) NHWC image (already padded) per call, SIMD channels per input beat (CF = C/SIMD beats a pixel).
//
// Output per output pixel (oy, ox) in raster order, window rows iy = oy*STRIDE_H + ky*DIL_H, columns
// ix = ox*STRIDE_W + kx*DIL_W (hls/rtl/README.md):
//   PARALLEL_WINDOW=0, DEPTHWISE=0: K_H*K_W*CF beats in (ky, kx, cf) order: im2col index (ky*K_W + kx)*C + c.
//   PARALLEL_WINDOW=0, DEPTHWISE=1: the same beats in (cf, ky, kx) order: FINN's depthwise (fold-major) order.
//   PARALLEL_WINDOW=1: one beat per channel fold cf, lane (ky*K_W + kx)*SIMD + s = channel cf*SIMD + s at (ky, kx).
// Trailing rows and columns no window reaches are read and dropped.
//
// Buffering is the RTL's. PARALLEL_WINDOW=0: a ring of the RTL's DEPTH input beats (SPAN, the window's extent in the
// stream, about (K_H-1)*DIL_H image rows plus K_W columns, plus the largest jump between windows, rounded down to a
// power of two as the RTL does): the window at stream index `tail` starts once tail + SPAN beats are in, and a beat
// is taken only while it does not overwrite the window (written < tail + DEPTH). One loop iteration takes at most
// one input beat and emits at most one output beat; an input beat the current window does not wait for is taken
// only when it is already there (the RTL takes it while it emits), so the kernel never blocks on input it does not
// need. PARALLEL_WINDOW=1: the RTL's delay line of SPAN = (K_H-1)*DIL_H*IFM_W*CF + (K_W-1)*DIL_W*CF + 1 beats: a
// window (pixel, fold) is emitted when its newest beat is in, and the next beat is shifted in only once the
// window has gone out.
#ifndef QDET_SWG_HPP
#define QDET_SWG_HPP

#include "qdet_hls.hpp"

#include <cstdint>

#include "qdet_lanes.hpp"

namespace qdet_swg_detail {

// The largest power of two <= n (n >= 1).
constexpr int floor_pow2(int n) { return n < 2 ? 1 : 2 * floor_pow2(n / 2); }

// a mod m in [0, m).
constexpr int mod(int a, int m) { return ((a % m) + m) % m; }

// (a + d) mod m for a, d in [0, m).
inline int addm(int a, int d, int m) {
  const int s = a + d;
  return s >= m ? s - m : s;
}

template <class C, bool PARALLEL>
struct impl;

// PARALLEL_WINDOW=0: one window beat per output beat, read from the ring.
template <class C>
struct impl<C, false> {
  static constexpr int W = C::SIMD * C::BITS;

  static void run(hls::stream<ap_uint<W>>& in, hls::stream<ap_uint<W>>& out) {
    constexpr int CF = C::C / C::SIMD;
    constexpr int ROW_OFF = C::DIL_H * C::IFM_W * CF;  // stream distance between kernel rows
    constexpr int COL_OFF = C::DIL_W * CF;             // stream distance between kernel columns
    constexpr int SPAN = (C::K_H - 1) * ROW_OFF + (C::K_W - 1) * COL_OFF + CF;
    constexpr int J_COL = C::STRIDE_W * CF;                                        // next window in the row
    constexpr int J_ROW = (C::STRIDE_H * C::IFM_W - (C::OFM_W - 1) * C::STRIDE_W) * CF;  // first of the next row
    constexpr int D_FULL = SPAN + (J_ROW > J_COL ? J_ROW : J_COL);
    constexpr int D_POW2 = floor_pow2(D_FULL);
    constexpr int DEPTH = (D_POW2 >= SPAN + J_COL && 16 * D_POW2 >= 15 * D_FULL) ? D_POW2 : D_FULL;
    // In-window loops: a (fastest), b, c, and the ring address step when each advances (the RTL's).
    constexpr bool DW = C::DEPTHWISE != 0;
    constexpr int NA = DW ? C::K_W : CF, NB = DW ? C::K_H : C::K_W, NC = DW ? CF : C::K_H;
    constexpr int DA = DW ? COL_OFF : 1;
    constexpr int DB = DW ? ROW_OFF - (C::K_W - 1) * COL_OFF : COL_OFF - (CF - 1);
    constexpr int DC = DW ? 1 - (C::K_H - 1) * ROW_OFF - (C::K_W - 1) * COL_OFF
                          : ROW_OFF - (C::K_W - 1) * COL_OFF - (CF - 1);
    constexpr int DA_M = mod(DA, DEPTH), DB_M = mod(DB, DEPTH), DC_M = mod(DC, DEPTH);
    constexpr int JC_M = J_COL % DEPTH, JR_M = J_ROW % DEPTH;

    ap_uint<W> ring[DEPTH];
    int written = 0, waddr = 0;          // input beats taken, ring slot of the next one
    int tail = 0, taddr = 0, raddr = 0;  // the window's first stream index, its slot, the slot read next
    int sent = 0, ca = 0, cb = 0, cc = 0, ox = 0;
    bool first = true;  // the next output beat is a window's first
    while (sent < C::OUT_BEATS || written < C::IN_BEATS) {
      QDET_HLS(PIPELINE II = 1)
      const bool more = sent < C::OUT_BEATS;
      const bool starved = more && first && written < tail + SPAN;
      const bool room = written < C::IN_BEATS && (!more || written < tail + DEPTH);
      if (room && (starved || !more || !in.empty())) {
        ring[waddr] = in.read();
        waddr = waddr == DEPTH - 1 ? 0 : waddr + 1;
        ++written;
      }
      if (more && (!first || written >= tail + SPAN)) {
        out.write(ring[raddr]);
        ++sent;
        first = false;
        if (ca != NA - 1) {
          ++ca;
          raddr = addm(raddr, DA_M, DEPTH);
        } else {
          ca = 0;
          if (cb != NB - 1) {
            ++cb;
            raddr = addm(raddr, DB_M, DEPTH);
          } else {
            cb = 0;
            if (cc != NC - 1) {
              ++cc;
              raddr = addm(raddr, DC_M, DEPTH);
            } else {  // window done: the next one starts a column or a row further on
              cc = 0;
              first = true;
              const bool lox = ox == C::OFM_W - 1;
              tail += lox ? J_ROW : J_COL;
              taddr = addm(taddr, lox ? JR_M : JC_M, DEPTH);
              raddr = taddr;
              ox = lox ? 0 : ox + 1;
            }
          }
        }
      }
    }
  }
};

// PARALLEL_WINDOW=1: one beat per (output pixel, channel fold), the K_H*K_W taps of the window side by side, from
// the RTL's delay line: per kernel row a segment of LS beats (registers: the K_W taps), and between two rows a
// RAM delay of G beats (the rest of an image row). Every input beat shifts the whole line by one: it enters row
// K_H-1's segment, each segment's oldest beat goes into the delay feeding the row above, whose oldest beat enters
// that row's segment. The segments and delays are rings (one shared slot pointer each), so a shift moves no data.
template <class C>
struct impl<C, true> {
  static constexpr int W = C::SIMD * C::BITS;
  static constexpr int K = C::K_H * C::K_W;

  static void run(hls::stream<ap_uint<W>>& in, hls::stream<ap_uint<K * W>>& out) {
    constexpr int CF = C::C / C::SIMD;
    constexpr int ROW_OFF = C::DIL_H * C::IFM_W * CF;
    constexpr int COL_OFF = C::DIL_W * CF;
    constexpr int LS = (C::K_W - 1) * COL_OFF + 1;  // a kernel row's segment
    constexpr int G = ROW_OFF - LS;                 // the delay between two rows' segments (>= 0)
    constexpr int SPAN = (C::K_H - 1) * ROW_OFF + LS;
    // From the last fold's window of a pixel to fold 0 of the next pixel in the row / of the next row.
    constexpr int J_COL = C::STRIDE_W * CF - (CF - 1);
    constexpr int J_ROW = (C::STRIDE_H * C::IFM_W - (C::OFM_W - 1) * C::STRIDE_W) * CF - (CF - 1);
    constexpr int NI = (W + 63) / 64, NO = (K * W + 63) / 64;  // 64-bit words of an input and an output beat

    ap_uint<W> seg[C::K_H][LS];
    QDET_HLS(ARRAY_PARTITION variable = seg complete dim = 0)
    ap_uint<W> gap[C::K_H > 1 ? C::K_H - 1 : 1][G > 0 ? G : 1];
    QDET_HLS(ARRAY_PARTITION variable = gap complete dim = 1)
    int h = 0, g = 0;            // slot of each segment's oldest beat, of each delay's oldest beat
    int written = 0;             // input beats taken (= shifts)
    int base = 0;                // stream index of the next window's oldest beat (its top-left tap)
    int sent = 0, f = 0, ox = 0;
    while (sent < C::OUT_BEATS || written < C::IN_BEATS) {
      QDET_HLS(PIPELINE II = 1)
      const bool more = sent < C::OUT_BEATS;
      if (written < C::IN_BEATS && (!more || written < base + SPAN)) {  // shift the next beat in
        ap_uint<W> x = in.read();
        for (int ky = C::K_H - 1; ky >= 0; --ky) {
          QDET_HLS(UNROLL)
          const ap_uint<W> oldest = seg[ky][h];
          seg[ky][h] = x;
          if (ky > 0) {
            if (G > 0) {
              x = gap[ky - 1][g];
              gap[ky - 1][g] = oldest;
            } else {
              x = oldest;
            }
          }
        }
        h = h == LS - 1 ? 0 : h + 1;
        if (G > 0) g = g == G - 1 ? 0 : g + 1;
        ++written;
      }
      if (more && written >= base + SPAN) {  // the line holds the window whose top-left is `base`
        uint64_t v[NO + 1], x[NI + 1];       // the output beat's words, a tap's words
        QDET_HLS(ARRAY_PARTITION variable = v complete)
        QDET_HLS(ARRAY_PARTITION variable = x complete)
        for (int j = 0; j <= NO; ++j) {
          QDET_HLS(UNROLL)
          v[j] = 0;
        }
        for (int ky = 0; ky < C::K_H; ++ky) {
          QDET_HLS(UNROLL)
          for (int kx = 0; kx < C::K_W; ++kx) {
            QDET_HLS(UNROLL)
            qdet_lanes::split<W>(seg[ky][addm(h, kx * COL_OFF, LS)], x);
            qdet_lanes::copy(v, (ky * C::K_W + kx) * W, x, 0, W);
          }
        }
        out.write(qdet_lanes::join<K * W>(v));
        ++sent;
        if (f != CF - 1) {
          ++f;
          ++base;
        } else {
          f = 0;
          const bool lox = ox == C::OFM_W - 1;
          base += lox ? J_ROW : J_COL;
          ox = lox ? 0 : ox + 1;
        }
      }
    }
  }
};

}  // namespace qdet_swg_detail

template <class C>
void qdet_swg(hls::stream<ap_uint<C::SIMD * C::BITS>>& in,
              hls::stream<ap_uint<(C::PARALLEL_WINDOW != 0 ? C::K_H * C::K_W : 1) * C::SIMD * C::BITS>>& out) {
  static_assert(C::C % C::SIMD == 0, "qdet_swg: SIMD must divide C");
  static_assert(C::OFM_H == (C::IFM_H - ((C::K_H - 1) * C::DIL_H + 1)) / C::STRIDE_H + 1 &&
                    C::OFM_W == (C::IFM_W - ((C::K_W - 1) * C::DIL_W + 1)) / C::STRIDE_W + 1,
                "qdet_swg: OFM must be (IFM - ((K-1)*DIL+1)) / STRIDE + 1");
  static_assert(C::PARALLEL_WINDOW == 0 || C::SIMD == C::C || C::DEPTHWISE != 0 || C::K_H * C::K_W == 1,
                "qdet_swg: a non-depthwise parallel window carries all channels (SIMD = C)");
  static_assert(C::IN_BEATS == C::IFM_H * C::IFM_W * (C::C / C::SIMD), "qdet_swg: IN_BEATS must be one image");
  static_assert(C::OUT_BEATS == C::OFM_H * C::OFM_W * (C::C / C::SIMD) *
                                    (C::PARALLEL_WINDOW != 0 ? 1 : C::K_H * C::K_W),
                "qdet_swg: OUT_BEATS must be one image's windows");
  qdet_swg_detail::impl<C, C::PARALLEL_WINDOW != 0>::run(in, out);
}

#endif  // QDET_SWG_HPP
