// qdet's own hls::stream for C simulation with g++ (not Xilinx's; Vitis HLS uses its own header instead).
//
// hls::stream<T, DEPTH> holds at most DEPTH beats (0: unbounded, for a testbench's outer streams). Inside a
// dataflow region (qdet_csim.h) a read from an empty stream or a write to a full one waits for the other processes;
// outside one it is an error naming the stream, since nothing could ever end the wait. Every stream records its
// maximum occupancy under its name, and when a trace file is set, every beat written to a named stream.
#ifndef QDET_HLS_STREAM_H
#define QDET_HLS_STREAM_H

#include <cstddef>
#include <cstdio>
#include <vector>
#include <string>

// Xilinx's ap_private.h reads a default-constructed value before it is masked (harmless, but g++ -O2 says "(may
// be) used uninitialized" at ap_uint constructors): silenced for that header only, so -Wall -Wextra -Werror keeps
// its meaning for qdet's code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "ap_int.h"
#pragma GCC diagnostic pop
#include "qdet_csim.h"

#define QDET_CSIM_STREAMS 1

namespace qdet {
namespace csim {
template <int W>
inline void trace_word(std::FILE* f, const std::string& name, const ap_uint<W>& v) {
  std::fprintf(f, "%s ", name.c_str());
  for (int nib = (W + 3) / 4 - 1; nib >= 0; --nib) {
    const int lo = nib * 4, hi = lo + 3 < W ? lo + 3 : W - 1;
    std::fputc("0123456789abcdef"[static_cast<unsigned>(v.range(hi, lo).to_uint())], f);
  }
  std::fputc('\n', f);
}
template <typename T>
inline void trace_word(std::FILE*, const std::string&, const T&) {}  // only ap_uint words are traced
}  // namespace csim
}  // namespace qdet

namespace hls {

// stream<T> is the unbounded (or run-time bounded) stream every kernel takes by reference; stream<T, DEPTH> is a
// stream<T> holding at most DEPTH beats, as in Vitis HLS, so a generated top can declare each edge's depth.
template <typename T, int DEPTH = 0>
class stream;

template <typename T>
class stream<T, 0> : public ::qdet::csim::Channel {
 public:
  stream() : Channel("", 0) { grow(kUnbounded); }
  explicit stream(const char* name) : Channel(name, 0) { grow(kUnbounded); }

  bool empty() const { return count_ == 0; }
  bool full() const { return capacity_ && count_ >= capacity_; }
  // C simulation only: hold up to `beats` (a stream on no reconvergent path, whose capacity cannot decide a deadlock).
  void set_capacity(std::size_t beats) {
    capacity_ = beats;
    if (beats > buf_.size()) grow(beats);
  }
  std::size_t size() const { return count_; }
  std::size_t occupancy() const override { return count_; }

  T read() {
    while (count_ == 0) wait(false);
    T v = buf_[head_];
    if (++head_ == buf_.size()) head_ = 0;
    --count_;
    took();
    return v;
  }
  void read(T& v) { v = read(); }
  bool read_nb(T& v) {
    if (count_ == 0) return false;
    v = read();
    return true;
  }
  void write(const T& v) {
    while (full()) wait(true);
    if (count_ == buf_.size()) grow(2 * buf_.size());  // unbounded only: a bounded ring holds its depth
    std::size_t tail = head_ + count_;
    if (tail >= buf_.size()) tail -= buf_.size();
    buf_[tail] = v;
    ++count_;
    if (::qdet::csim::trace_file() && !name().empty()) ::qdet::csim::trace_word(::qdet::csim::trace_file(), name(), v);
    wrote(count_);
  }
  bool write_nb(const T& v) {
    if (full()) return false;
    write(v);
    return true;
  }
  void operator>>(T& v) { v = read(); }
  void operator<<(const T& v) { write(v); }

 protected:
  stream(const char* name, std::size_t depth) : Channel(name, depth) { grow(depth); }

 private:
  static constexpr std::size_t kUnbounded = 64;
  // A ring of `capacity` slots holding the same beats in the same order, the oldest at head_ = 0.
  void grow(std::size_t capacity) {
    std::vector<T> ring(capacity);
    for (std::size_t i = 0; i < count_; ++i) ring[i] = buf_[(head_ + i) % buf_.size()];
    buf_.swap(ring);
    head_ = 0;
  }
  std::vector<T> buf_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

template <typename T, int DEPTH>
class stream : public stream<T, 0> {
  static_assert(DEPTH > 0, "a stream's depth is at least 1");

 public:
  stream() : stream<T, 0>("", DEPTH) {}
  explicit stream(const char* name) : stream<T, 0>(name, DEPTH) {}
};

}  // namespace hls

#endif  // QDET_HLS_STREAM_H
