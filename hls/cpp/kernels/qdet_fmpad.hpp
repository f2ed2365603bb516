// qdet_fmpad: FINN FMPadding, one (IMG_H, IMG_W, C) NHWC image per call, SIMD channels per beat, padded with zero
// beats to (IMG_H+PAD_T+PAD_B, IMG_W+PAD_L+PAD_R, C) (FINN's Padding = [PAD_T, PAD_L, PAD_B, PAD_R]).
//
// One output beat per iteration: a border beat is zero (all bits), an interior beat is the next input beat. As in
// the RTL, a frame's leading border waits for the frame's first input beat (taken first here, the RTL leaves it
// offered), so the kernel never runs ahead into a frame that has not started. No other buffering (the RTL has its
// output skid only).
#ifndef QDET_FMPAD_HPP
#define QDET_FMPAD_HPP

#include "qdet_hls.hpp"

template <class C>
void qdet_fmpad(hls::stream<ap_uint<C::SIMD * C::BITS>>& in, hls::stream<ap_uint<C::SIMD * C::BITS>>& out) {
  constexpr int W = C::SIMD * C::BITS;
  constexpr int CF = C::C / C::SIMD;
  constexpr int OH = C::IMG_H + C::PAD_T + C::PAD_B;
  constexpr int OW = C::IMG_W + C::PAD_L + C::PAD_R;
  static_assert(C::C % C::SIMD == 0, "qdet_fmpad: SIMD must divide C");
  static_assert(C::IN_BEATS == C::IMG_H * C::IMG_W * CF, "qdet_fmpad: IN_BEATS must be one image's beats");
  static_assert(C::OUT_BEATS == OH * OW * CF, "qdet_fmpad: OUT_BEATS must be one padded image's beats");

  ap_uint<W> head = in.read();  // the frame has started: its leading border may go out
  bool held = true;
  int y = 0, x = 0, f = 0;
  for (int i = 0; i < C::OUT_BEATS; ++i) {
    QDET_HLS(PIPELINE II = 1)
    const bool border = y < C::PAD_T || y >= C::PAD_T + C::IMG_H || x < C::PAD_L || x >= C::PAD_L + C::IMG_W;
    ap_uint<W> v = 0;
    if (!border) {
      if (held) {
        v = head;
        held = false;
      } else {
        v = in.read();
      }
    }
    out.write(v);
    if (f != CF - 1) {
      ++f;
    } else {
      f = 0;
      if (x != OW - 1) {
        ++x;
      } else {
        x = 0;
        ++y;
      }
    }
  }
}

#endif  // QDET_FMPAD_HPP
