// qdet_upsample: FINN UpsampleNearestNeighbour by integer factors FH = OFM_H/IFM_H, FW = OFM_W/IFM_W, one
// (IFM_H, IFM_W, C) NHWC image per call, SIMD channels per beat (CF = C/SIMD beats a pixel): output pixel (y, x) =
// input pixel (y / FH, x / FW), so each input row becomes FH output rows in which each pixel's CF beats repeat FW
// times in a row.
//
// Two row banks of IFM_W*CF beats, as the RTL: row r is written into bank r % 2 while it is first replayed (a beat
// is read when its first copy is due), and while row r is replayed the next row is taken into the other bank as
// far as its beats are already there (the RTL takes input while fewer than two complete rows wait), never further;
// at most one input beat per output beat.
#ifndef QDET_UPSAMPLE_HPP
#define QDET_UPSAMPLE_HPP

#include "qdet_hls.hpp"

template <class C>
void qdet_upsample(hls::stream<ap_uint<C::SIMD * C::BITS>>& in, hls::stream<ap_uint<C::SIMD * C::BITS>>& out) {
  constexpr int W = C::SIMD * C::BITS;
  constexpr int CF = C::C / C::SIMD;
  constexpr int RB = C::IFM_W * CF;  // beats of an input row
  constexpr int FH = C::OFM_H / C::IFM_H, FW = C::OFM_W / C::IFM_W;
  static_assert(C::C % C::SIMD == 0, "qdet_upsample: SIMD must divide C");
  static_assert(C::OFM_H == FH * C::IFM_H && C::OFM_W == FW * C::IFM_W, "qdet_upsample: integer factors only");
  static_assert(C::IN_BEATS == C::IFM_H * RB, "qdet_upsample: IN_BEATS must be one image");
  static_assert(C::OUT_BEATS == C::OFM_H * C::OFM_W * CF, "qdet_upsample: OUT_BEATS must be one upsampled image");

  ap_uint<W> bank[2][RB];
  int rd = 0, wb = 0, wpos = 0;      // input beats taken; the bank and slot of the next one
  int r = 0, fh = 0, limit = 2 * RB;  // input row replayed, its copy; taking stops at the row after next
  int x = 0, fw = 0, cf = 0;
  for (int i = 0; i < C::OUT_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    const int slot = x * CF + cf;
    // At most one input beat per iteration: the beat whose first copy is due, else the next one if it is there.
    if (rd <= r * RB + slot || (rd < C::IN_BEATS && rd < limit && !in.empty())) {
      bank[wb][wpos] = in.read();
      ++rd;
      if (++wpos == RB) {
        wpos = 0;
        wb ^= 1;
      }
    }
    out.write(bank[r & 1][slot]);
    if (++cf == CF) {
      cf = 0;
      if (++fw == FW) {
        fw = 0;
        if (++x == C::IFM_W) {
          x = 0;
          if (++fh == FH) {
            fh = 0;
            ++r;
            limit += RB;
          }
        }
      }
    }
  }
}

#endif  // QDET_UPSAMPLE_HPP
