// What every qdet kernel and generated top includes: the stream type, HLS pragmas, dataflow regions.
//
// Pragmas: QDET_HLS(PIPELINE II = 1) is `#pragma HLS PIPELINE II = 1` for Vitis HLS (through _Pragma, the form
// Vitis documents for pragmas in macros) and nothing for qdet's g++ C simulation, which would otherwise warn about
// every unknown pragma under -Wall (g++ 12 cannot silence that warning per file).
//
// QDET_NAME(stream, "l8") names an element of an array of streams for C simulation's reports (nothing for Vitis).
//
// QDET_CSIM_CAPACITY(stream, beats) lets C simulation hold more beats on a stream that lies on no reconvergent path
// (no fork/join pair has it on one of its branches): in a dataflow graph only streams on such paths can take part
// in a deadlock, so their capacity stays the hardware's depth, while a larger one elsewhere only lets a producer run
// ahead, with far fewer coroutine switches. Nothing for Vitis: the hardware depth is the declaration's.
//
// Dataflow regions:
//   QDET_DATAFLOW_BEGIN
//   QDET_PROCESS("MVAU_hls_0", qdet_mvau<MVAU_hls_0>(a, b));
//   ...
//   QDET_DATAFLOW_END
// With qdet's C-simulation hls_stream.h each QDET_PROCESS is a coroutine and QDET_DATAFLOW_END runs them all
// against bounded streams (a deadlock is an error naming the streams, qdet_csim.h). With Vitis HLS' headers
// (synthesis, or Vitis' own C simulation with unbounded streams) they are the calls in order, under the caller's
// #pragma HLS DATAFLOW.
#ifndef QDET_HLS_HPP
#define QDET_HLS_HPP

// hls_stream.h first: qdet's C-simulation one includes ap_int.h with Xilinx's spurious -O2 warnings silenced.
#include "hls_stream.h"
#include "ap_int.h"

#define QDET_PRAGMA_(x) _Pragma(#x)

#ifdef QDET_CSIM_STREAMS
#define QDET_HLS(...)
#define QDET_NAME(stream, name) (stream).set_name(name);
#define QDET_CSIM_CAPACITY(stream, beats) (stream).set_capacity(beats);
#define QDET_DATAFLOW_BEGIN ::qdet::csim::Region qdet_region_;
#define QDET_PROCESS(name, ...) qdet_region_.spawn(name, [&]() { __VA_ARGS__; });
#define QDET_DATAFLOW_END qdet_region_.run();
#else
#define QDET_HLS(...) QDET_PRAGMA_(HLS __VA_ARGS__)
#define QDET_NAME(stream, name)
#define QDET_CSIM_CAPACITY(stream, beats)
#define QDET_DATAFLOW_BEGIN
#define QDET_PROCESS(name, ...) __VA_ARGS__;
#define QDET_DATAFLOW_END
#endif

#endif  // QDET_HLS_HPP
