"""FIFO depths on reconvergent paths: a skip branch must hold what the long branch delays.

A fork (DuplicateStreams) hands every beat to all its branches; a join (a residual ElementwiseAdd, a
StreamingConcat) takes its inputs in a fixed order. While the join waits for beat i of one branch, that branch needs
a number of the fork's beats first (its *need*: an MVAU needs a whole input vector per output pixel, a sliding
window K-1 rows and K pixels of lead, an upsampler the input row it replays); the fork has then also handed those
beats to the other branch, whose beats the join has not taken yet. They must fit in front of the join, or the fork
stalls, the long branch starves and nothing moves: a deadlock, whatever the clock.

This module computes each branch's need exactly, per beat, from the folded node attributes (one frame, numpy), and
from it, for the FIFO in front of each join input, ``deadlock_depth``: the fewest beats that never deadlock (the
other branch's production at the moment the join waits, minus what the join has taken). The depth built
(``rate_depth``, rounded up to a power of two) is what keeps the join at the estimated rate: a fluid timing model
of both branches at the pipeline's estimated cycles per frame (each kernel's need, its output period and a few
cycles of latency) says how many beats the short branch has produced when the join gets each beat of the long one.
``qdet sim --size-fifos`` confirms the depths with an RTL simulation that records each FIFO's largest occupancy. Kernels qdet does not model get a need bounded in the safe direction (a
long branch needs a whole frame, a short branch produces at its average rate).
"""

from __future__ import annotations

import math

import numpy as np
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from flows.transforms.insert_fifos import is_dwc, is_fifo, pow2_at_least, set_depth

JOINS = ("ElementwiseAdd", "StreamingConcat")
# Beats the kernels at the ends of a branch hold besides its FIFO: the fork keeps a beat one output took until the
# others take it (qdet_fork), and qdet_add takes each input into a two-beat skid; qdet_concat reads its inputs
# directly. Other kernels on the branch (a width converter) hold a few beats more, which only makes the bound safe.
FORK_SLACK = 1
JOIN_SLACK = {"ElementwiseAdd": 2, "StreamingConcat": 0}
# Cycles of pipeline latency per kernel on the long branch, beyond its need (registers, memory reads, adder tree):
# during them the fork keeps delivering to the short branch, so its FIFO needs that many more beats to keep the rate.
LATENCY_PER_KERNEL = 6


def kind(node) -> str:
    return node.op_type.rsplit("_", 1)[0] if node.op_type.endswith(("_hls", "_rtl")) else node.op_type


def _beats(op, out: bool = True, index: int = 0) -> int:
    shape = op.get_folded_output_shape(index) if out else op.get_folded_input_shape(index)
    return int(np.prod(shape[:-1]))


def _swg_need(op, k: np.ndarray) -> np.ndarray:
    """Input beats a sliding window needs before output beat k: the window's last pixel, all its channel folds."""
    ih, iw = op.get_nodeattr("IFMDim")
    oh, ow = op.get_nodeattr("OFMDim")
    kh, kw = op.get_nodeattr("ConvKernelDim")
    sh, sw = op.get_nodeattr("Stride")
    dh, dw = op.get_nodeattr("Dilation")
    cf = op.get_nodeattr("IFMChannels") // op.get_nodeattr("SIMD")
    per_pixel = _beats(op) // (oh * ow)
    pixel = k // per_pixel
    oy, ox = pixel // ow, pixel % ow
    last = (oy * sh + (kh - 1) * dh) * iw + ox * sw + (kw - 1) * dw
    return (last + 1) * cf


def _pad_need(op, k: np.ndarray) -> np.ndarray:
    """Input beats zero padding needs before output beat k: the real beats up to it in raster order."""
    h, w = op.get_nodeattr("ImgDim")
    t, l, b, r = op.get_nodeattr("Padding")
    cf = op.get_nodeattr("NumChannels") // op.get_nodeattr("SIMD")
    ow = w + l + r
    pixel, fold = k // cf, k % cf
    y, x = pixel // ow - t, pixel % ow - l
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    # Beats of real pixels strictly before (y, x) in raster order, plus this one's folds when it is real.
    rows_before = np.clip(y, 0, h)
    in_row = np.where((y >= 0) & (y < h), np.clip(x, 0, w), 0)
    before = (rows_before * w + in_row) * cf
    return np.where(inside, before + fold + 1, before)


def _upsample_need(op, k: np.ndarray) -> np.ndarray:
    """Input beats nearest upsampling needs before output beat k: the input pixel it repeats (its folds)."""
    hi, wi = op.get_nodeattr("HI"), op.get_nodeattr("WI")
    ho, wo = op.get_nodeattr("HO"), op.get_nodeattr("WO")
    cf = op.get_nodeattr("NumChannels") // op.get_nodeattr("SIMD")
    pixel, fold = k // cf, k % cf
    y, x = (pixel // wo) * hi // ho, (pixel % wo) * wi // wo
    return (y * wi + x) * cf + fold + 1


def need(model, node, in_port: int, out_port: int, long_branch: bool) -> np.ndarray:
    """need[k]: beats of input ``in_port`` that ``node`` must have taken before it can emit beat k of output
    ``out_port`` (one frame). ``long_branch`` picks the safe bound for kernels qdet does not model."""
    op = getCustomOp(node)
    n_out = _beats(op, True, out_port)
    k = np.arange(n_out, dtype=np.int64)
    n_in = _beats(op, False, in_port)
    what = kind(node)
    if what in ("StreamingFIFO", "Thresholding", "DuplicateStreams", "ElementwiseAdd"):
        return k + 1
    if what == "StreamingDataWidthConverter":
        return -((-(k + 1) * n_in) // n_out)  # ceil((k + 1) * in_beats / out_beats): the elements of beat k
    if what == "MVAU":
        nf = op.get_nodeattr("MH") // op.get_nodeattr("PE")
        sf = op.get_nodeattr("MW") // op.get_nodeattr("SIMD")
        return (k // nf + 1) * sf
    if what == "VVAU":
        nf = op.get_nodeattr("Channels") // op.get_nodeattr("PE")
        kf = int(np.prod(op.get_nodeattr("Kernel"))) // op.get_nodeattr("SIMD")
        return (k // nf) * nf * kf + (k % nf + 1) * kf
    if what == "ConvolutionInputGenerator":
        return _swg_need(op, k)
    if what == "FMPadding":
        return _pad_need(op, k)
    if what == "Pool":
        return (k + 1) * (n_in // n_out)
    if what == "UpsampleNearestNeighbour":
        return _upsample_need(op, k)
    if what == "StreamingConcat":
        chans = op.get_nodeattr("ChannelsPerStream")
        simd = op.get_nodeattr("SIMD")
        a, b = chans[0] // simd, chans[1] // simd
        pixel, pos = k // (a + b), k % (a + b)
        if in_port == 0:
            return pixel * a + np.minimum(pos + 1, a)
        return pixel * b + np.maximum(0, pos - a + 1)
    if long_branch:
        return np.full(n_out, n_in, dtype=np.int64)
    return -((-(k + 1) * n_in) // n_out)


def compose(needs: list[np.ndarray]) -> np.ndarray:
    """The need of a path (nodes upstream first) from the needs of its nodes: beats of the path's input needed for
    each beat of its output."""
    g = needs[-1]
    for upstream in reversed(needs[:-1]):
        g = np.where(g > 0, upstream[np.maximum(g, 1) - 1], 0)
    return g


class _Branches:
    """Per tensor: the forks upstream of it, and the fork beats it needs per beat (memoised).

    A branch from a fork to a tensor may run through further forks (identity: each output has the input's beats) and
    joins (each beat needs its beats on every input that reaches the fork: the larger need), so the need is a
    dynamic programme over (tensor, fork) pairs rather than an enumeration of paths, which doubles at every
    residual block."""

    def __init__(self, model):
        self.model = model
        self._forks: dict[str, frozenset] = {}
        self._need: dict[tuple, np.ndarray | None] = {}
        self._kernels: dict[tuple, int] = {}

    def _inputs(self, node) -> list[tuple[int, str]]:
        return [(i, t) for i, t in enumerate(node.input) if t and self.model.get_initializer(t) is None]

    def forks(self, tensor: str) -> frozenset:
        """Names of the forks upstream of ``tensor`` (its own producer included)."""
        if tensor not in self._forks:
            node = self.model.find_producer(tensor)
            found: set = set()
            if node is not None:
                if kind(node) == "DuplicateStreams":
                    found.add(node.name)
                for _, t in self._inputs(node):
                    found |= self.forks(t)
            self._forks[tensor] = frozenset(found)
        return self._forks[tensor]

    def need(self, tensor: str, fork, fork_out: int | None, long_branch: bool) -> np.ndarray | None:
        """Beats of ``fork``'s input needed for each beat of ``tensor`` (reached from fork output ``fork_out``, or
        any output when None); None when ``tensor`` does not descend from it that way."""
        key = (tensor, fork.name, fork_out, long_branch)
        if key in self._need:
            return self._need[key]
        node = self.model.find_producer(tensor)
        result, kernels = None, 0
        if node is fork:
            port = list(node.output).index(tensor)
            if fork_out is None or port == fork_out:
                beats = _beats(getCustomOp(node), True, port)
                result = np.arange(1, beats + 1, dtype=np.int64)
        elif node is not None and fork.name in self.forks(tensor):
            out_port = list(node.output).index(tensor)
            for in_port, t in self._inputs(node):
                upstream = self.need(t, fork, fork_out, long_branch)
                if upstream is None:
                    continue
                g = compose([upstream, need(self.model, node, in_port, out_port, long_branch)])
                result = g if result is None else np.maximum(result, g)
                kernels = max(kernels, self._kernels[(t, fork.name, fork_out, long_branch)] + 1)
        self._need[key] = result
        self._kernels[key] = kernels
        return result

    def times(self, tensor: str, fork, fork_out: int | None, frame_cycles: float) -> np.ndarray | None:
        """When each beat of ``tensor`` can leave its producer, in cycles from the frame's first fork beat.

        A fluid model of the pipeline at its estimated rate: the fork hands on its beats evenly over the frame's
        ``frame_cycles``; each kernel emits beat k no sooner than ``LATENCY_PER_KERNEL`` cycles after the input
        beats it needs arrived, and no sooner than one output period (its estimated cycles over its output beats)
        after beat k-1. A kernel that needs a whole vector or row before it emits, then emits at its own rate,
        delays its branch by more than its need alone says: that lag is what the short branch's FIFO fills
        with while the join waits."""
        key = ("t", tensor, fork.name, fork_out)
        if key in self._need:
            return self._need[key]
        node = self.model.find_producer(tensor)
        result = None
        if node is fork:
            port = list(node.output).index(tensor)
            if fork_out is None or port == fork_out:
                beats = _beats(getCustomOp(node), True, port)
                result = np.arange(beats, dtype=np.float64) * (frame_cycles / beats)
        elif node is not None and fork.name in self.forks(tensor):
            out_port = list(node.output).index(tensor)
            op = getCustomOp(node)
            n_out = _beats(op, True, out_port)
            period = float(op.get_exp_cycles()) / n_out if n_out else 0.0
            k = np.arange(n_out, dtype=np.float64)
            for in_port, t in self._inputs(node):
                upstream = self.times(t, fork, fork_out, frame_cycles)
                if upstream is None:
                    continue
                g = need(self.model, node, in_port, out_port, True)
                ready = np.where(g > 0, upstream[np.maximum(g, 1) - 1], 0.0) + LATENCY_PER_KERNEL
                t_out = k * period + np.maximum.accumulate(ready - k * period)
                result = t_out if result is None else np.maximum(result, t_out)
        self._need[key] = result
        return result

    def kernels(self, tensor: str, fork, fork_out: int | None, long_branch: bool) -> int:
        """Kernels on the longest way from the fork to ``tensor`` (after :meth:`need`)."""
        return self._kernels[(tensor, fork.name, fork_out, long_branch)]

    def nearest_common_forks(self, a: str, b: str) -> list:
        """The forks both tensors descend from that are not upstream of another such fork: where they part."""
        common = self.forks(a) & self.forks(b)
        nodes = [self.model.get_node_from_name(n) for n in sorted(common)]
        return [f for f in nodes if not any(f.name in self.forks(g.input[0]) for g in nodes if g is not f)]

    def fork_ports(self, tensor: str, fork) -> set[int]:
        """The fork outputs ``tensor`` descends from."""
        return {p for p in range(len(fork.output)) if self.need(tensor, fork, p, True) is not None}


def _join_consumed(node, port: int, other: int, i: np.ndarray) -> np.ndarray:
    """Beats of input ``other`` a join has taken when it waits for beat i of input ``port``."""
    if kind(node) == "ElementwiseAdd":
        return i
    op = getCustomOp(node)
    chans, simd = op.get_nodeattr("ChannelsPerStream"), op.get_nodeattr("SIMD")
    a, b = chans[0] // simd, chans[1] // simd
    return (i // a) * b if port == 0 else (i // b + 1) * a


class SizeReconvergentFIFOs(Transformation):
    """Deepen the FIFO in front of each join input to what its reconvergent paths need (module doc); ``record``
    holds, per sized FIFO, the fork, the join, both depths and the branch lengths."""

    def __init__(self):
        super().__init__()
        self.record: dict[str, dict] = {}

    def apply(self, model):
        branches = _Branches(model)
        for join in model.graph.node:
            if kind(join) not in JOINS:
                continue
            inputs = [t for t in join.input if model.get_initializer(t) is None]
            for port, tensor in enumerate(inputs):
                fifo = model.find_producer(tensor)
                while is_dwc(fifo):  # a down-converter's FIFO sits in front of it (insert_fifos)
                    fifo = model.find_producer(fifo.input[0])
                if not is_fifo(fifo):
                    continue
                best = None
                for other, other_tensor in enumerate(inputs):
                    if other == port:
                        continue
                    for fork in branches.nearest_common_forks(tensor, other_tensor):
                        best = self._size(model, branches, join, fork, port, tensor, other, other_tensor, best)
                if best is None:
                    continue
                deadlock, rate, fork, long_len, short_len = best
                # In the FIFO's own beats (wider ones in front of a down-converter), rounded up.
                ratio = _beats(getCustomOp(join), False, port) / _beats(getCustomOp(fifo), True, 0)
                deadlock, rate = math.ceil(deadlock / ratio), math.ceil(rate / ratio)
                base = getCustomOp(fifo).get_nodeattr("depth")  # what its consumer needs anyway (insert_fifos)
                depth = max(base, pow2_at_least(rate))
                set_depth(fifo, depth)
                self.record[fifo.name] = {"join": join.name, "join_input": port, "fork": fork, "base_depth": base,
                                          "deadlock_depth": int(deadlock), "rate_depth": int(rate),
                                          "depth": int(depth), "long_branch_nodes": long_len,
                                          "short_branch_nodes": short_len}
        return model, False

    @staticmethod
    def _size(model, branches, join, fork, port, tensor, other, other_tensor, best):
        """The requirement on the FIFO at join input ``port`` (the buffering branch Y) while the join waits for
        input ``other`` (the branch X), both from ``fork``; the larger of ``best`` and it."""
        ports_y, ports_x = branches.fork_ports(tensor, fork), branches.fork_ports(other_tensor, fork)
        if len(ports_y) != 1 or not ports_x or ports_x & ports_y:
            return best  # not two separate branches of this fork
        out_y, out_x = next(iter(ports_y)), None  # the waiting input may come from several outputs: the larger need
        g_x = branches.need(other_tensor, fork, out_x, True)  # fork beats the waiting input needs, per beat
        g_y = branches.need(tensor, fork, out_y, False)
        idx = np.arange(len(g_x), dtype=np.int64)
        # What the buffering branch has produced from those fork beats, minus what the join took of it.
        held = np.searchsorted(g_y, g_x, side="right") - _join_consumed(join, other, port, idx)
        deadlock = int(max(2, held.max() - FORK_SLACK - JOIN_SLACK[kind(join)]))
        long_len = branches.kernels(other_tensor, fork, out_x, True)
        # At the estimated rate: what the short branch has produced by the time the join gets each long-branch
        # beat (fluid timing, :meth:`_Branches.times`), minus what the join took; and never less than the deadlock
        # bound plus one beat a cycle during the long branch's latency.
        frame = max(float(getCustomOp(n).get_exp_cycles()) for n in model.graph.node)
        t_x = branches.times(other_tensor, fork, out_x, frame)
        t_y = branches.times(tensor, fork, out_y, frame)
        timed = np.searchsorted(t_y, t_x, side="right") - _join_consumed(join, other, port, idx)
        rate = max(deadlock + LATENCY_PER_KERNEL * (long_len + 1), int(timed.max()) + 1)
        if best is None or rate > best[1]:
            best = (deadlock, rate, fork.name, long_len, branches.kernels(tensor, fork, out_y, False))
        return best
