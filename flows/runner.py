"""Run a flow: load and check the input model, run each step, checkpoint after every one, time and log them.

Where everything goes is :class:`flows.build.BuildLayout`'s business. A failing step leaves every earlier
checkpoint in place; ``FlowConfig.start`` resumes from the step that failed. A build directory that already holds
a build is refused unless the flow resumes (``start``) or replaces it (``overwrite``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from flows.build import BuildLayout
from flows.config import FlowConfig, FlowError
from quant_models.chatter import chatter_to

Step = Callable[["ModelWrapper", FlowConfig], "ModelWrapper"]  # noqa: F821 (qonnx is imported lazily)
Progress = Callable[[str, int, int], None]


def step_name(step: Step) -> str:
    """A step's name: its function name without the ``step_`` prefix."""
    return step.__name__.removeprefix("step_")


def save_model(model, path: Path) -> None:
    """Save a ModelWrapper atomically: a build never sees a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    model.save(str(tmp))
    os.replace(tmp, path)


def load_input(path: Path, written_by: str | None = None):
    """Load the input ONNX model and check it is one a build can start from.

    ``written_by`` names the step that wrote ``path`` when it is a step checkpoint (a resumed build): a broken one
    is then to be rewritten by rerunning that step, not re-exported. Raises FlowError for a missing, corrupt or
    non-ONNX file and for missing or dynamic input shapes."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    path = Path(path)
    if written_by is None:
        fix = "Is it the file written by qdet export (or brevitas export_qonnx)?"
    else:
        fix = f"The checkpoint is damaged (truncated?): rerun the build from the step that wrote it, --from {written_by}"
    if not path.is_file():
        raise FlowError(f"{path}: no such file. " + (f"Export a model first: qdet export CKPT --out {path}"
                                                     if written_by is None else fix))
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError ... for non-ONNX bytes
        raise FlowError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc}). {fix}") from None
    if not proto.graph.node:
        raise FlowError(f"{path}: the ONNX graph has no nodes (an empty or truncated file?). {fix}")
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise FlowError(f"{path}: expected exactly one graph input (the image), found {len(inputs)}: "
                        f"{[i.name for i in inputs]}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    if not dims or any(not isinstance(d, int) or d <= 0 for d in shape):
        raise FlowError(f"{path}: input {inputs[0].name!r} has a missing or dynamic shape {shape}. FINN needs static "
                        "shapes: export with a fixed input size (qdet export does) and batch size 1")
    return ModelWrapper(proto)


def _resolve(steps: Sequence[Step], cfg: FlowConfig) -> tuple[int, int]:
    names = [step_name(s) for s in steps]

    def index(name: str | None, default: int) -> int:
        if name is None:
            return default
        if name not in names:
            raise FlowError(f"unknown step {name!r}; the steps of this flow are: {', '.join(names)}")
        return names.index(name)

    first, last = index(cfg.start, 0), index(cfg.stop, len(steps) - 1)
    if first > last:
        raise FlowError(f"--from {cfg.start} comes after --to {cfg.stop} in the flow ({', '.join(names)})")
    return first, last


def _clear(layout: BuildLayout) -> None:
    """Remove what a previous build left (``overwrite``): stale checkpoints, reports and backend outputs would
    otherwise sit beside the new build's and be read as its own."""
    for folder in (layout.steps_dir, layout.golden_dir, layout.report_dir, layout.rtl_dir, layout.sim_dir,
                   layout.synth_dir, layout.vivado_dir, layout.finn_tmp):
        if folder.is_dir():
            shutil.rmtree(folder)
    for path in (layout.io_spec, layout.times, layout.record):
        path.unlink(missing_ok=True)


def check_flow(cfg: FlowConfig, steps: Sequence[Step]) -> tuple[int, int]:
    """Every check a build can make before it starts: step names, the output folder, an existing build.

    Returns the (first, last) step indices."""
    first, last = _resolve(steps, cfg)
    names = [step_name(s) for s in steps]
    layout = BuildLayout.of(cfg.out)
    layout.check_writable()
    if first == 0 and layout.has_build() and not cfg.overwrite:
        raise FlowError(f"{layout.root} already holds a build ({layout.relative(layout.input_checkpoint)}): "
                        f"resume it with --from STEP (steps: {', '.join(names)}), replace it with --overwrite, or "
                        "choose another --out")
    if first > 0:
        previous = layout.checkpoint(first, names[first - 1])
        if not previous.is_file():
            raise FlowError(f"cannot resume at step {names[first]!r}: {previous} is missing. Run the build from an "
                            "earlier step (or from the start)")
    return first, last


def run_flow(model_path: Path, cfg: FlowConfig, steps: Sequence[Step], progress: Progress | None = None):
    """Run ``steps`` on the model at ``model_path`` (or resume, see ``cfg.start``); return the final model.

    Every step's result is saved to the build's steps folder before the next one starts. A step that raises
    leaves the earlier checkpoints and the log in place and re-raises as FlowError naming the step. Nothing is
    written before the input model has loaded and passed its checks."""
    layout = BuildLayout.of(cfg.out)
    first, last = check_flow(cfg, steps)
    names = [step_name(s) for s in steps]
    if first == 0:
        model = load_input(model_path)
    else:
        model = load_input(layout.checkpoint(first, names[first - 1]), written_by=names[first - 1])
    if first == 0 and cfg.overwrite:
        _clear(layout)
    layout.root.mkdir(parents=True, exist_ok=True)
    # FINN writes its temporary files under FINN_BUILD_DIR: keep them inside this build, not in /tmp.
    os.environ["FINN_BUILD_DIR"] = str(layout.finn_tmp.resolve())
    layout.write_record(cfg.board, cfg.clock, {"target_fps": cfg.target_fps, "max_fps": cfg.target_fps is None
                                               and cfg.folding is None,
                                               "folding": None if cfg.folding is None else str(cfg.folding)})
    if first == 0:
        save_model(model, layout.input_checkpoint)
    times: dict[str, float] = json.loads(layout.times.read_text()) if first > 0 and layout.times.is_file() else {}
    times = {k: v for k, v in times.items() if k in names[:first]}
    with open(layout.log, "a") as log:
        log.write(f"=== build of {model_path} for {cfg.board} at {cfg.clock:g} MHz: steps "
                  f"{names[first]}..{names[last]}\n")
        for i in range(first, last + 1):
            name = names[i]
            if progress is not None:
                progress(name, i - first, last - first + 1)
            log.write(f"--- step {i + 1:02d} {name}\n")
            log.flush()
            tick = time.perf_counter()
            try:
                # Third-party prints and warnings (FINN, QONNX, onnx) belong in the log, not on the console.
                with chatter_to(log):
                    model = steps[i](model, cfg)
            except Exception as exc:
                log.write(traceback.format_exc())
                done = f"; steps up to {names[i - 1]!r} are saved in {layout.steps_dir}" if i else ""
                message = str(exc) if isinstance(exc, FlowError) else f"{type(exc).__name__}: {exc}"
                raise FlowError(f"step {name!r} failed: {message}{done}. Resume with --from {name} "
                                f"(details in {layout.log})") from exc
            times[name] = round(time.perf_counter() - tick, 3)
            save_model(model, layout.checkpoint(i + 1, name))
            layout.times.write_text(json.dumps(times, indent=2) + "\n")
            log.write(f"--- step {i + 1:02d} {name} done in {times[name]:.2f} s\n")
    return model
