// qdet_fork: FINN DuplicateStreams: each of a frame's IN_BEATS input beats (WIDTH bits) to every one of N outputs.
//
// The RTL's skid with a taken-mask: the beat held is offered to every output that has not taken it yet, each
// output takes it on its own cycle, and the next beat is read only once every output has taken this one (a branch
// that stalls longer stalls the others, as in the RTL). So one waiting branch does not keep the beat from the
// others. In qdet's C simulation an iteration in which no output could take the beat waits for the first output
// that has not taken it (a C process cannot wait for "any"), then offers the beat to the others again.
#ifndef QDET_FORK_HPP
#define QDET_FORK_HPP

#include "qdet_hls.hpp"

template <class C>
void qdet_fork(hls::stream<ap_uint<C::WIDTH>>& in, hls::stream<ap_uint<C::WIDTH>> out[C::N]) {
  static_assert(C::N >= 2, "qdet_fork: N >= 2 outputs");
  static_assert(C::OUT_BEATS == C::IN_BEATS, "qdet_fork: every output carries the input's beats");
  ap_uint<C::WIDTH> v = 0;
  bool taken[C::N];
  QDET_HLS(ARRAY_PARTITION variable = taken complete)
  int left = 0;   // outputs that have not taken v
  int beats = 0;  // input beats read
  while (left > 0 || beats < C::IN_BEATS) {
    QDET_HLS(PIPELINE II = 1)
    if (left == 0) {
      v = in.read();
      ++beats;
      left = C::N;
      for (int n = 0; n < C::N; ++n) {
        QDET_HLS(UNROLL)
        taken[n] = false;
      }
    }
    bool moved = false;
    for (int n = 0; n < C::N; ++n) {
      QDET_HLS(UNROLL)
      if (!taken[n] && out[n].write_nb(v)) {
        taken[n] = true;
        moved = true;
        --left;
      }
    }
#ifdef QDET_CSIM_STREAMS
    if (!moved && left > 0) {  // every output still to take v is full: wait for the first of them
      int n = 0;
      while (taken[n]) ++n;
      out[n].write(v);
      taken[n] = true;
      --left;
    }
#else
    (void)moved;
#endif
  }
}

#endif  // QDET_FORK_HPP
