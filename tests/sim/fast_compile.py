"""Verilator options for whole-network simulations of the small nets the tests build.

sim.network compiles its model for long runs (-O3, full unrolling, the C++ at -O2): right for `qdet sim` on a real
detector, but a test net here runs a few thousand cycles, so compiling the model is nearly all of its simulation
time. Appended to sim.network's own options (the last -O the C++ compiler sees wins), -O0 cut the skip-FIFO test
(four compiles of the residual net) from 162 s to 122 s of CPU and random graph 0 from 96 s to 77 s. The RTL and
the harness are unchanged, so every bit-exactness, rate and deadlock check reads the same cycles. Pass it to every
run on one build (a different option set is a different model to compile), and only where a run is a few
thousand cycles: the unoptimised model runs ~10-40x slower (FINN's CNV, 294k cycles: 7 s of simulation became
292 s), so a real detector's frames keep sim.network's options.
"""

FAST_COMPILE = ("-CFLAGS", "-O0")
