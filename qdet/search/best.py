"""``qdet search-best``: rebuild the best trials of a search (the front, highest mAP first) from their own
checkpoints, verified on the data set's val images, and simulate each build bit-exactly: the C simulation of the
HLS C++ backend (``cpp``, g++), the cycle-accurate RTL simulation (``rtl``, Verilator or Icarus), or both
(``both``: one build, the two backends against the same golden frames).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qdet.search.space import SearchError

BACKENDS = ("cpp", "rtl", "both")


@dataclass(frozen=True)
class BestConfig:
    """Which trials to rebuild and how to simulate them."""

    out: Path  # the search folder
    top: int = 3  # the front's best by mAP@0.5 (ignored when ``trials`` names some)
    trials: tuple[int, ...] = ()
    backend: str = "cpp"
    images: int = 4  # val images the build is verified on and simulated
    simulator: str = "verilator"
    storage: str | None = None
    study_name: str = "qdet-search"

    def __post_init__(self) -> None:
        if self.top < 1:
            raise SearchError(f"--top must be >= 1, got {self.top}")
        if self.images < 1:
            raise SearchError(f"--images must be >= 1 (the frames each build is verified on and simulated), got "
                              f"{self.images}")
        if self.backend not in BACKENDS:
            raise SearchError(f"--backend {self.backend!r}: choose cpp (C simulation), rtl (RTL simulation) or both")

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends each rebuilt trial is simulated on, in order."""
        return ("cpp", "rtl") if self.backend == "both" else (self.backend,)


def chosen(data: dict[str, Any], cfg: BestConfig) -> list[dict[str, Any]]:
    """The trials to rebuild: those named, else the front's ``top`` by mAP@0.5."""
    trials = {t["number"]: t for t in data["trials"]}
    if cfg.trials:
        unknown = [n for n in cfg.trials if n not in trials]
        if unknown:
            raise SearchError(f"--trial {', '.join(map(str, unknown))}: no completed trial with that number (completed: "
                              f"{', '.join(map(str, sorted(trials)))})")
        picked = [trials[n] for n in cfg.trials]
        bad = [t["number"] for t in picked if "fps" not in t]
        if bad:
            raise SearchError(f"trial {', '.join(map(str, bad))} did not fit the board: nothing to rebuild")
        return picked
    front = sorted((trials[n] for n in data["front"]), key=lambda t: -t["map50"])
    if not front:
        raise SearchError(f"{cfg.out}: the study has no feasible trial yet; run `qdet search` further")
    return front[:cfg.top]


def rebuild_best(cfg: BestConfig, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Rebuild and simulate the chosen trials; one record per trial (build folder, simulation status, mismatches,
    figures). A simulation that differs from the golden model is a SearchError naming the build."""
    from hls.backend import get_backend
    from quant_models.chatter import chatter_to
    from qdet.search.report import summary
    from qdet.search.study import context, load_search
    from qdet.search.trial import TrialPaths, build

    search, study = load_search(cfg.out, cfg.storage, cfg.study_name)
    picked = chosen(summary(search, study), cfg)
    if "rtl" in cfg.backends:
        from sim.tools import require

        require(cfg.simulator)
    ctx = replace(context(search, None), budget=replace(search.budget, verify_images=cfg.images))
    records = []
    for t in picked:
        paths = TrialPaths(search.layout.trial(t["number"]))
        ckpt = Path(t["checkpoint"])
        if not paths.onnx.is_file() or not ckpt.is_file():
            raise SearchError(f"trial {t['number']}: {paths.onnx} or {ckpt} is gone; it cannot be rebuilt")
        out = search.layout.best(t["number"])
        say(f"trial {t['number']} ({t['label']}): rebuilding in {out} ...")
        with open(search.layout.root / "search.log", "a") as log, chatter_to(log):
            layout = build(paths.onnx, ckpt, out, ctx, search.seed,
                           verify_data=Path(search.data))
            results = {}
            for name in cfg.backends:
                backend = get_backend(name)
                backend.generate(layout)
                options = {"images": cfg.images, **({"simulator": cfg.simulator} if name == "rtl" else {})}
                results[name] = backend.simulate(layout, **options)
        est = layout.read_estimates()
        for name, result in results.items():
            rec = {"trial": t["number"], "label": t["label"], "build": str(out), "backend": name,
                   "status": result.status, "frames": result.frames, "mismatches": result.mismatches,
                   "map50": t["map50"], "fps": est["fps"], "lut": est["lut"], "message": result.message}
            say(f"trial {t['number']}: {result.status}, {result.frames} frames, {result.mismatches} mismatches "
                f"({name} simulation); {est['fps']:,.0f} FPS, {est['lut']:,.0f} LUT")
            records.append(rec)
    bad = [r for r in records if r["status"] != "done" or r["mismatches"]]
    if bad:
        raise SearchError("; ".join(f"trial {r['trial']}: {r['status']}, {r['mismatches']} mismatches ({r['message']}; "
                                    f"build {r['build']})" for r in bad))
    return records
