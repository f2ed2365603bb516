// qdet_dwc: the data width converter, IN_ELEMS -> OUT_ELEMS elements of BITS bits per beat, any ratio, element
// order kept across beat boundaries (element 0 of the first input beat is element 0 of the first output beat). A
// frame is IN_BEATS input beats, a whole number of lcm(IN_ELEMS, OUT_ELEMS) elements (the RTL has no flush), and
// OUT_BEATS = IN_BEATS * IN_ELEMS / OUT_ELEMS output beats.
//
// Buffers no more than the RTL (less than IN_ELEMS + OUT_ELEMS elements): an input beat is read only when the next
// output beat needs its elements. Equal widths pass beats on; IN = R*OUT sends each input beat as R output beats;
// OUT = R*IN gathers R input beats into one; any other ratio appends input beats to an element buffer at its fill
// level and sends OUT_ELEMS elements at a time.
#ifndef QDET_DWC_HPP
#define QDET_DWC_HPP

#include "qdet_hls.hpp"

#include <cstdint>

#include "qdet_lanes.hpp"

namespace qdet_dwc_detail {

enum Ratio { EQUAL, DOWN, UP, GENERAL };

constexpr int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }

template <class C>
constexpr Ratio ratio() {
  return C::IN_ELEMS == C::OUT_ELEMS       ? EQUAL
         : C::IN_ELEMS % C::OUT_ELEMS == 0 ? DOWN
         : C::OUT_ELEMS % C::IN_ELEMS == 0 ? UP
                                           : GENERAL;
}

template <class C, Ratio R = ratio<C>()>
struct impl;

template <class C>
struct impl<C, EQUAL> {
  static constexpr int W = C::IN_ELEMS * C::BITS;
  static void run(hls::stream<ap_uint<W>>& in, hls::stream<ap_uint<W>>& out) {
    for (int i = 0; i < C::IN_BEATS; ++i) {
      QDET_HLS(PIPELINE II = 1)
      out.write(in.read());
    }
  }
};

template <class C>
struct impl<C, DOWN> {
  static constexpr int IW = C::IN_ELEMS * C::BITS, OW = C::OUT_ELEMS * C::BITS;
  static constexpr int R = C::IN_ELEMS / C::OUT_ELEMS, NI = (IW + 63) / 64, NO = (OW + 63) / 64;
  static void run(hls::stream<ap_uint<IW>>& in, hls::stream<ap_uint<OW>>& out) {
    uint64_t wide[NI + 1], part[NO + 1];  // the input beat's words, an output beat's words
    QDET_HLS(ARRAY_PARTITION variable = wide complete)
    QDET_HLS(ARRAY_PARTITION variable = part complete)
    wide[NI] = 0;
    int k = 0;  // output beats sent from `wide`
    for (int i = 0; i < C::OUT_BEATS; ++i) {
      QDET_HLS(PIPELINE II = 1)
      if (k == 0) qdet_lanes::split<IW>(in.read(), wide);
      for (int j = 0; j <= NO; ++j) {
        QDET_HLS(UNROLL)
        part[j] = 0;
      }
      qdet_lanes::copy(part, 0, wide, k * OW, OW);
      out.write(qdet_lanes::join<OW>(part));
      k = k == R - 1 ? 0 : k + 1;
    }
  }
};

template <class C>
struct impl<C, UP> {
  static constexpr int IW = C::IN_ELEMS * C::BITS, OW = C::OUT_ELEMS * C::BITS;
  static constexpr int R = C::OUT_ELEMS / C::IN_ELEMS, NI = (IW + 63) / 64, NO = (OW + 63) / 64;
  static void run(hls::stream<ap_uint<IW>>& in, hls::stream<ap_uint<OW>>& out) {
    uint64_t part[NI + 1], wide[NO + 1];  // an input beat's words, the output beat's words
    QDET_HLS(ARRAY_PARTITION variable = part complete)
    QDET_HLS(ARRAY_PARTITION variable = wide complete)
    part[NI] = 0;
    int k = 0;  // input beats gathered into `wide`
    for (int i = 0; i < C::IN_BEATS; ++i) {
      QDET_HLS(PIPELINE II = 1)
      if (k == 0) {
        for (int j = 0; j <= NO; ++j) {
          QDET_HLS(UNROLL)
          wide[j] = 0;
        }
      }
      qdet_lanes::split<IW>(in.read(), part);
      qdet_lanes::copy(wide, k * IW, part, 0, IW);
      if (k == R - 1) {
        out.write(qdet_lanes::join<OW>(wide));
        k = 0;
      } else {
        ++k;
      }
    }
  }
};

template <class C>
struct impl<C, GENERAL> {
  static constexpr int IW = C::IN_ELEMS * C::BITS, OW = C::OUT_ELEMS * C::BITS;
  static constexpr int NI = (IW + 63) / 64, NO = (OW + 63) / 64, NB = (IW + OW + 63) / 64;
  static void run(hls::stream<ap_uint<IW>>& in, hls::stream<ap_uint<OW>>& out) {
    uint64_t buf[NB + 1], part[NI + 1], beat[NO + 1];  // elements held (oldest at bit 0), an input beat, an output
    QDET_HLS(ARRAY_PARTITION variable = buf complete)
    QDET_HLS(ARRAY_PARTITION variable = part complete)
    QDET_HLS(ARRAY_PARTITION variable = beat complete)
    for (int j = 0; j <= NB; ++j) {
      QDET_HLS(UNROLL)
      buf[j] = 0;
    }
    part[NI] = 0;
    int held = 0;  // elements in buf (< OUT_ELEMS + IN_ELEMS)
    int sent = 0;
    while (sent < C::OUT_BEATS) {
      QDET_HLS(PIPELINE II = 1)
      if (held < C::OUT_ELEMS) {  // append an input beat at the fill level
        qdet_lanes::split<IW>(in.read(), part);
        qdet_lanes::copy(buf, held * C::BITS, part, 0, IW);
        held += C::IN_ELEMS;
      }
      if (held >= C::OUT_ELEMS) {  // send the oldest OUT_ELEMS, move the rest down
        for (int j = 0; j <= NO; ++j) {
          QDET_HLS(UNROLL)
          beat[j] = 0;
        }
        qdet_lanes::copy(beat, 0, buf, 0, OW);
        out.write(qdet_lanes::join<OW>(beat));
        for (int j = 0; j < NB; ++j) {
          QDET_HLS(UNROLL)
          const int lo = j * 64 + OW;  // word j of the buffer after the move: bits [lo, lo + 64) before it
          buf[j] = lo < NB * 64 ? qdet_lanes::field(buf, lo, lo + 64 <= NB * 64 ? 64 : NB * 64 - lo) : 0;
        }
        held -= C::OUT_ELEMS;
        ++sent;
      }
    }
  }
};

}  // namespace qdet_dwc_detail

template <class C>
void qdet_dwc(hls::stream<ap_uint<C::IN_ELEMS * C::BITS>>& in, hls::stream<ap_uint<C::OUT_ELEMS * C::BITS>>& out) {
  static_assert(C::IN_BEATS * C::IN_ELEMS == C::OUT_BEATS * C::OUT_ELEMS,
                "qdet_dwc: a frame's input and output hold the same elements");
  static_assert((C::IN_BEATS * C::IN_ELEMS) %
                        (C::IN_ELEMS / qdet_dwc_detail::gcd(C::IN_ELEMS, C::OUT_ELEMS) * C::OUT_ELEMS) == 0,
                "qdet_dwc: a frame must be a whole number of lcm(IN_ELEMS, OUT_ELEMS) elements");
  qdet_dwc_detail::impl<C>::run(in, out);
}

#endif  // QDET_DWC_HPP
