// qdet's C-simulation runtime: bounded streams, cooperative dataflow processes, deadlock detection.
//
// Used only for C simulation with g++ (Vitis HLS brings its own hls_stream.h; under Vitis none of this is
// compiled). Why a scheduler: in hardware every dataflow process runs at once and every stream holds DEPTH beats;
// a sequential C simulation (one process after the other, unbounded streams) can neither see a FIFO that is too
// shallow nor the occupancy a stream really reaches. Here each QDET_PROCESS of a dataflow region runs as a coroutine
// on its own stack; a read from an empty stream or a write to a full one parks it until the stream's other end
// moves (the stream wakes it: no polling). When no process can move, the region is deadlocked, as the hardware
// would be, and the error names every waiting process and the stream it waits on. Every kernel blocks on reads and
// writes only, so the network is a Kahn process network with bounded channels: whether it deadlocks does not depend
// on the order the scheduler picks.
//
// Speed: a context switch is a handful of register moves (x86-64: our own 12-instruction switch; elsewhere
// swapcontext, which also saves the signal mask with a system call), so depth-2 streams, which switch every two
// beats, cost tens of nanoseconds a beat.
#ifndef QDET_CSIM_H
#define QDET_CSIM_H

#include <sys/mman.h>

#include <cstddef>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__) && !defined(QDET_CSIM_UCONTEXT)
#define QDET_CSIM_ASM_SWITCH 1
// qdet_csim_switch(&from_sp, to_sp): save the callee-saved registers on this stack, store its pointer in from_sp,
// continue on to_sp's stack. Weak: every translation unit that includes this header emits it, the linker keeps one.
asm(R"(
    .text
    .weak qdet_csim_switch
    .type qdet_csim_switch, @function
qdet_csim_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size qdet_csim_switch, .-qdet_csim_switch
)");
extern "C" void qdet_csim_switch(void** from_sp, void* to_sp);
#else
#include <ucontext.h>
#endif

namespace qdet {
namespace csim {

// A stream error (empty read outside a dataflow region, deadlock, leftover beats): the message names the streams.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

struct StreamStats {
  std::size_t depth = 0;
  std::size_t capacity = 0;
  std::size_t max_occupancy = 0;
  std::size_t beats = 0;
};

// Per stream name, over every region run so far (the ctypes API reads and clears it).
inline std::map<std::string, StreamStats>& stats() {
  static std::map<std::string, StreamStats> s;
  return s;
}

// Where written beats are traced ("<stream> <hex word>" lines), or null.
inline std::FILE*& trace_file() {
  static std::FILE* f = nullptr;
  return f;
}

class Channel;

struct Process {
  std::string name;
  std::function<void()> body;
#ifdef QDET_CSIM_ASM_SWITCH
  void* sp = nullptr;
#else
  ucontext_t context;
#endif
  void* stack = nullptr;
  std::size_t stack_size = 0;
  bool done = false;
  const Channel* waits_on = nullptr;  // set while parked
  bool waits_to_write = false;
  std::string error;
};

// Coroutine stacks kept for the next region (one region runs per frame: mapping and faulting in fresh stacks
// every frame cost more than small kernels do).
inline std::vector<void*>& stack_pool() {
  static std::vector<void*> pool;
  return pool;
}

class Region;
inline Region*& current_region() {
  static Region* r = nullptr;
  return r;
}
// The process running now (null outside a dataflow region).
inline Process*& running_process() {
  static Process* p = nullptr;
  return p;
}

// A stream's untyped half: name, capacity, statistics, and the processes parked on it.
class Channel {
 public:
  Channel(const std::string& name, std::size_t depth) : name_(name), depth_(depth), capacity_(depth) {}
  virtual ~Channel() {
    if (!name_.empty()) {
      StreamStats& s = stats()[name_];
      s.depth = depth_;
      s.capacity = capacity_;
      if (max_ > s.max_occupancy) s.max_occupancy = max_;
      s.beats += beats_;
    }
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  const std::string& name() const { return name_; }
  // Names an element of an array of streams (C++14 cannot construct array elements with names).
  void set_name(const char* name) { name_ = name; }
  // The depth the hardware has (Vitis' depth; 0: unbounded) and the beats this C simulation lets the stream hold:
  // the same, except on a stream that lies on no reconvergent path (see QDET_CSIM_CAPACITY in qdet_hls.hpp).
  std::size_t depth() const { return depth_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t max_occupancy() const { return max_; }
  const Process* reader() const { return reader_; }
  std::string describe(std::size_t held) const {
    return "'" + (name_.empty() ? std::string("(unnamed)") : name_) + "' (depth " +
           (depth_ ? std::to_string(depth_) : std::string("unbounded")) +
           (capacity_ != depth_ ? ", capacity " + std::to_string(capacity_) : std::string()) + ", " +
           std::to_string(held) + " beats held)";
  }
  virtual std::size_t occupancy() const = 0;

 protected:
  inline void wait(bool writing);  // parks the running process, or throws outside a region (below)
  inline void wake(bool writer);   // a parked reader (writer) can go on (below)
  void wrote(std::size_t occupancy) {
    ++beats_;
    if (occupancy > max_) max_ = occupancy;
    if (parked_reader_) wake(false);
  }
  void took() {
    if (!reader_) reader_ = running_process();
    if (parked_writer_) wake(true);
  }

 private:
  friend class Region;
  std::string name_;
  std::size_t depth_;

 protected:
  std::size_t capacity_;

 private:
  std::size_t max_ = 0;
  std::size_t beats_ = 0;
  const Process* reader_ = nullptr;
  Process* parked_reader_ = nullptr;
  Process* parked_writer_ = nullptr;
};

// One dataflow region: processes are spawned in call order, then run() runs them until all are done.
class Region {
 public:
  static constexpr std::size_t kStack = 64u << 20;  // reserved, not committed: pages are touched on demand
  static constexpr std::size_t kPooled = 512;        // stacks kept for the next region

  Region() : outer_(current_region()) { current_region() = this; }
  ~Region() {
    current_region() = outer_;
    for (auto& p : procs_) {
      if (!p->stack) continue;
      if (stack_pool().size() < kPooled)
        stack_pool().push_back(p->stack);  // a parked (deadlocked) process's stack too: it never resumes
      else
        munmap(p->stack, p->stack_size);
    }
  }
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  void spawn(const char* name, std::function<void()> body) {
    std::unique_ptr<Process> p(new Process());
    p->name = name;
    p->body = std::move(body);
    procs_.push_back(std::move(p));
  }

  // Runs every process to its end; throws Error on a deadlock or when a process failed.
  void run() {
    for (auto& p : procs_) {
      start(*p);
      ready_.push_back(p.get());
    }
    while (!ready_.empty()) {
      Process* p = ready_.front();
      ready_.pop_front();
      resume(*p);
      if (!p->error.empty()) throw Error("process " + p->name + ": " + p->error);
    }
    for (auto& p : procs_)
      if (!p->done) throw Error(deadlock());
  }

  // From a stream, inside a process: park until the stream's other end wakes it.
  void park(Channel* c, bool writing) {
    Process* p = running_process();
    p->waits_on = c;
    p->waits_to_write = writing;
    (writing ? c->parked_writer_ : c->parked_reader_) = p;
    suspend(*p);
  }
  void wake(Process* p) {
    p->waits_on = nullptr;
    ready_.push_back(p);
  }

 private:
  static void entry() {
    Process* p = running_process();
    try {
      p->body();
    } catch (const std::exception& e) {
      p->error = e.what();
    }
    p->done = true;
    current_region()->suspend(*p);  // never resumed
  }

  void start(Process& p) {
    p.stack_size = kStack;
    if (!stack_pool().empty()) {
      p.stack = stack_pool().back();
      stack_pool().pop_back();
    } else {
      p.stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    }
    if (p.stack == MAP_FAILED) {
      p.stack = nullptr;
      throw Error("cannot map a stack for process " + p.name);
    }
#ifdef QDET_CSIM_ASM_SWITCH
    // The first switch to the process pops six zero registers and returns into entry(), with the stack aligned as
    // after a call (a zero return address above it ends any unwinding there).
    void** top = reinterpret_cast<void**>(static_cast<char*>(p.stack) + kStack);
    top[-1] = nullptr;
    top[-2] = reinterpret_cast<void*>(&Region::entry);
    for (int i = 3; i <= 8; ++i) top[-i] = nullptr;
    p.sp = top - 8;
#else
    getcontext(&p.context);
    p.context.uc_stack.ss_sp = p.stack;
    p.context.uc_stack.ss_size = kStack;
    p.context.uc_link = nullptr;
    makecontext(&p.context, &Region::entry, 0);
#endif
  }

  void resume(Process& p) {
    running_process() = &p;
#ifdef QDET_CSIM_ASM_SWITCH
    qdet_csim_switch(&scheduler_sp_, p.sp);
#else
    swapcontext(&scheduler_, &p.context);
#endif
    running_process() = nullptr;
  }

  void suspend(Process& p) {
#ifdef QDET_CSIM_ASM_SWITCH
    qdet_csim_switch(&p.sp, scheduler_sp_);
#else
    swapcontext(&p.context, &scheduler_);
#endif
  }

  // Every parked process and its stream; first the culprits: full streams whose reader waits on another stream
  // (a join starved on one input while this one, its other branch, cannot hold what that input still lacks).
  std::string deadlock() const {
    std::string culprits, full, empty;
    for (auto& p : procs_) {
      if (p->done || !p->waits_on) continue;
      const Channel* c = p->waits_on;
      const std::string what = c->describe(c->occupancy());
      (p->waits_to_write ? full : empty) += "\n  " + p->name + (p->waits_to_write ? " waits to write to full stream "
                                                                                  : " waits to read from empty stream ") + what;
      const Process* r = c->reader();
      if (p->waits_to_write && r && !r->done && r->waits_on && r->waits_on != c && !r->waits_to_write)
        culprits += "\n  stream " + what + " is full while its reader " + r->name + " waits for stream '" +
                    r->waits_on->name() + "': deepen '" + c->name() + "'";
    }
    return "deadlock: no process of the dataflow region can move" + culprits + full + empty;
  }

  Region* outer_;
  std::vector<std::unique_ptr<Process>> procs_;
  std::deque<Process*> ready_;
#ifdef QDET_CSIM_ASM_SWITCH
  void* scheduler_sp_ = nullptr;
#else
  ucontext_t scheduler_;
#endif
};

inline void Channel::wait(bool writing) {
  Region* r = current_region();
  if (r && running_process()) {
    r->park(this, writing);
    return;
  }
  // Outside a dataflow region nothing else can ever move this stream: in hardware the caller would hang.
  throw Error(std::string(writing ? "write to full stream " : "read from empty stream ") + describe(occupancy()) +
              " outside a dataflow region: in hardware this waits forever");
}

inline void Channel::wake(bool writer) {
  Process*& p = writer ? parked_writer_ : parked_reader_;
  Process* q = p;
  p = nullptr;
  current_region()->wake(q);
}

}  // namespace csim
}  // namespace qdet

#endif  // QDET_CSIM_H
