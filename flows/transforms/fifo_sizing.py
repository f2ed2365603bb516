"""FIFO depths on reconvergent paths: a skip branch must hold what the long branch delays.

A fork (DuplicateStreams) hands every beat to all its branches; a join (a residual ElementwiseAdd, a
StreamingConcat) takes its inputs in a fixed order. While the join waits for beat i of one branch, that branch needs
a number of the fork's beats first (its *need*: an MVAU needs a whole input vector per output pixel, a sliding
window K-1 rows and K pixels of lead, an upsampler the input row it replays); the fork has then also handed those
beats to the other branch, whose beats the join has not taken yet. They must fit in front of the join, or the fork
stalls, the long branch starves and nothing moves: a deadlock, whatever the clock.

This module computes each branch's need exactly, per beat, from the folded node attributes (one frame, numpy), and
from it, for the FIFO in front of each join input, ``deadlock_depth``: the fewest beats that never deadlock (the
other branch's production at the moment the join waits, minus what the join has taken). The depth built adds
``rate_margin`` beats for the long branch's pipeline latency (during which the fork keeps delivering), so that the
join also runs at the estimated rate; ``qdet build --size-fifos sim`` confirms the depths with an RTL simulation that
records each FIFO's largest occupancy. Kernels qdet does not model get a need bounded in the safe direction (a
long branch needs a whole frame, a short branch produces at its average rate).
"""

from __future__ import annotations

import numpy as np
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from flows.transforms.insert_fifos import is_fifo, pow2_at_least, set_depth

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


def _paths_to_fork(model, tensor: str):
    """Every (fork, path) upstream of ``tensor``: path = [(node, in_port, out_port)] from the fork (excluded) down to
    the node producing ``tensor``, through joins and forks alike."""
    producer = model.find_producer(tensor)
    if producer is None:
        return []
    out_port = list(producer.output).index(tensor)
    found = []
    if kind(producer) == "DuplicateStreams":
        found.append((producer, out_port, []))
    for in_port, t in enumerate(producer.input):
        if model.get_initializer(t) is not None:
            continue
        for fork, fork_out, path in _paths_to_fork(model, t):
            found.append((fork, fork_out, path + [(producer, in_port, out_port)]))
    return found


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
        for join in model.graph.node:
            if kind(join) not in JOINS:
                continue
            inputs = [t for t in join.input if model.get_initializer(t) is None]
            branches = {p: _paths_to_fork(model, t) for p, t in enumerate(inputs)}
            for port in branches:
                fifo = model.find_producer(inputs[port])
                if not is_fifo(fifo):
                    continue
                best = None
                for other in branches:
                    if other == port:
                        continue
                    best = self._size(model, join, port, other, branches, best)
                if best is None:
                    continue
                deadlock, rate, fork, long_len, short_len = best
                op = getCustomOp(fifo)
                base = op.get_nodeattr("depth")  # what its consumer needs anyway (flows.transforms.insert_fifos)
                depth = max(base, pow2_at_least(rate))
                set_depth(fifo, depth)
                self.record[fifo.name] = {"join": join.name, "join_input": port, "fork": fork, "base_depth": base,
                                          "deadlock_depth": int(deadlock), "rate_depth": int(rate),
                                          "depth": int(depth), "long_branch_nodes": long_len,
                                          "short_branch_nodes": short_len}
        return model, False

    def _size(self, model, join, port, other, branches, best):
        """The deepest requirement over the forks both inputs share, for the FIFO on ``port``."""
        for fork, fork_out_y, path_y in branches[port]:
            for fork_x, fork_out_x, path_x in branches[other]:
                if fork_x is not fork or fork_out_x == fork_out_y:
                    continue
                if {id(n) for n, _, _ in path_x} & {id(n) for n, _, _ in path_y}:
                    continue  # the branches meet before this join: a nearer fork decides
                # The waiting input X (long) and the buffering input Y (short), each from the fork to the join.
                g_y = compose([need(model, n, i, o, False) for n, i, o in path_y]) if path_y else None
                beats_x = _beats(getCustomOp(join), False, other)
                idx = np.arange(beats_x, dtype=np.int64)
                # Fork beats the long input needs for its beat i (through the join's own order for a concat).
                fork_needed = compose([need(model, n, i, o, True) for n, i, o in path_x]) if path_x else idx + 1
                produced = (np.searchsorted(g_y, fork_needed, side="right") if g_y is not None
                            else fork_needed)
                held = produced - _join_consumed(join, other, port, idx)
                deadlock = int(max(2, held.max() - FORK_SLACK - JOIN_SLACK[kind(join)]))
                # At most one beat a cycle reaches the short input during the long branch's latency.
                rate = deadlock + LATENCY_PER_KERNEL * (len(path_x) + 1)
                if best is None or rate > best[1]:
                    best = (deadlock, rate, fork.name, len(path_x), len(path_y))
        return best
