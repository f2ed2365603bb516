"""The ``rtl-sim`` runtime platform: the accelerator's RTL under Verilator (or Icarus), driven by the same packed
bytes a DMA would move, with cycle counts (:mod:`boards.runtime.device` names it; it runs only in the repository).

The frames go through the whole-network harness of :mod:`sim.network` (its input buffer, random input idle and
output stall, watchdog); the output beats come back as the DMA's bytes, so the driver above cannot tell this
platform from a board, except that it also learns the cycles: from the first input beat to the last output beat
(``cycles``), the first frame's latency, and the steady-state interval between frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from boards.runtime.device import AcceleratorError, RunStats
from boards.runtime.stream import pack_bytes, unpack_bytes, unpack_words
from flows.build import BuildLayout
from sim.network import SimConfig, _run, output_ports, watchdog_message


def ensure_rtl(layout: BuildLayout) -> dict:
    """The build's RTL manifest, the RTL generated first when absent or stale (with the existing generator
    settings)."""
    from dataclasses import asdict

    from hls.backend import get_backend
    from hls.gen import GenConfig, load_manifest

    if not layout.has_rtl() or layout.rtl_is_stale():
        config = GenConfig.of_manifest(layout.read_manifest()) if layout.has_rtl() else GenConfig()
        get_backend("rtl").generate(layout, **asdict(config))
    return load_manifest(layout.rtl_dir)


class RtlSimDevice:
    """:class:`boards.runtime.device.Device` over the build's RTL (generated when absent or stale)."""

    name = "rtl-sim"

    def __init__(self, spec: Any, build: Path | str | BuildLayout, *, simulator: str = "verilator",
                 backpressure: float = 0.0, seed: int = 0, **_options: Any):
        self.layout = BuildLayout.of(build)
        self.layout.check_existing()
        self.manifest = ensure_rtl(self.layout)
        self.spec = spec
        self.fclk_mhz = float(spec.clock_mhz)
        self.cfg = SimConfig(images=1, simulator=simulator, backpressure=backpressure, seed=seed, diagnose=False)

    def transfer(self, frames: int, inp: np.ndarray, outs: Sequence[np.ndarray]) -> RunStats:
        port = self.spec.inputs[0]
        lanes = unpack_bytes(inp, port.elems, port.bits, port.signed)
        est = (self.layout.read_optional(self.layout.estimates) or {}).get("cycles_per_frame") or 10 ** 6
        trace, _, wall = _run(self.layout.rtl_dir, self.manifest, self.layout.sim_run_dir(self.cfg.simulator),
                              self.cfg, lanes.reshape(frames, -1), dump=False, max_cycles=int(frames * est * 4 + 2_000_000),
                              log=self.layout.sim_log)
        if trace.status != "done":
            why = watchdog_message(self.manifest, trace) if trace.status == "watchdog" else trace.status
            raise AcceleratorError(f"the RTL simulation stopped at cycle {trace.end_cycle}: {why}")
        ports = output_ports(self.manifest)
        for p, (mport, out) in enumerate(zip(ports, outs)):
            words = trace.out_words.get(p, [])
            want = frames * mport["beats_per_frame"]
            if len(words) < want:
                raise AcceleratorError(f"the RTL simulation delivered {len(words)} of {want} beats on output {p}")
            vals = unpack_words(words[:want], mport["elems"], mport["bits"], mport["signed"])
            out[:] = pack_bytes(vals, mport["bits"], self.spec.outputs[p].width)
        done = [max(trace.out_cycles[p][(k + 1) * m["beats_per_frame"] - 1] for p, m in enumerate(ports))
                for k in range(frames)]
        start = trace.frame_start.get(0, 0)
        interval = (done[-1] - done[0]) / (frames - 1) if frames > 1 else None
        return RunStats(wall_s=wall, cycles=done[-1] - start, latency_cycles=done[0] - start,
                        interval_cycles=interval)

    def close(self) -> None:
        """The compiled model stays in the build's sim folder for the next run."""
