"""Run a flow: load and check the input model, run each step, checkpoint after every one, time and log them.

Layout of a build directory::

    BUILD/steps/00_input.onnx          the input model, as loaded and checked
    BUILD/steps/NN_<step>.onnx         the model after step NN (1-based), written atomically
    BUILD/time_per_step.json           seconds per step
    BUILD/build.log                    what each step did (FINN's prints and warnings go here, not to the console)

A failing step leaves every earlier checkpoint in place; ``FlowConfig.start`` resumes from the step that failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from flows.config import FlowConfig, FlowError

Step = Callable[["ModelWrapper", FlowConfig], "ModelWrapper"]  # noqa: F821 (qonnx is imported lazily)
Progress = Callable[[str, int, int], None]


def step_name(step: Step) -> str:
    """A step's name: its function name without the ``step_`` prefix."""
    return step.__name__.removeprefix("step_")


def checkpoint_path(out: Path, index: int, name: str) -> Path:
    """Where the model after step ``index`` (1-based; 0 is the input) is saved."""
    return out / "steps" / f"{index:02d}_{name}.onnx"


def save_model(model, path: Path) -> None:
    """Save a ModelWrapper atomically: a build never sees a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    model.save(str(tmp))
    os.replace(tmp, path)


def load_input(path: Path):
    """Load the input ONNX model and check it is one a build can start from.

    Raises FlowError for a missing, corrupt or non-ONNX file and for missing or dynamic input shapes."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    path = Path(path)
    if not path.is_file():
        raise FlowError(f"{path}: no such file. Export a model first: qdet export CKPT --out {path}")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError ... for non-ONNX bytes
        raise FlowError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc}). Is it the file written "
                        "by qdet export (or brevitas export_qonnx)?") from None
    if not proto.graph.node:
        raise FlowError(f"{path}: the ONNX graph has no nodes (an empty or truncated file?)")
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


def run_flow(model_path: Path, cfg: FlowConfig, steps: Sequence[Step], progress: Progress | None = None):
    """Run ``steps`` on the model at ``model_path`` (or resume, see ``cfg.start``); return the final model.

    Every step's result is saved to ``cfg.out/steps`` before the next one starts. A step that raises leaves the
    earlier checkpoints and the log in place and re-raises as FlowError naming the step."""
    out = Path(cfg.out)
    first, last = _resolve(steps, cfg)
    names = [step_name(s) for s in steps]
    out.mkdir(parents=True, exist_ok=True)
    # FINN writes its temporary files under FINN_BUILD_DIR: keep them inside this build, not in /tmp.
    os.environ["FINN_BUILD_DIR"] = str((out / "finn_tmp").resolve())
    if first == 0:
        model = load_input(model_path)
        save_model(model, checkpoint_path(out, 0, "input"))
    else:
        previous = checkpoint_path(out, first, names[first - 1])
        if not previous.is_file():
            raise FlowError(f"cannot resume at step {names[first]!r}: {previous} is missing. Run the build from an "
                            "earlier step (or from the start)")
        model = load_input(previous)
    times_path = out / "time_per_step.json"
    times: dict[str, float] = json.loads(times_path.read_text()) if first > 0 and times_path.is_file() else {}
    times = {k: v for k, v in times.items() if k in names[:first]}
    with open(out / "build.log", "a") as log:
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
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    model = steps[i](model, cfg)
            except Exception as exc:
                log.write(traceback.format_exc())
                done = f"; steps up to {names[i - 1]!r} are saved in {out / 'steps'}" if i else ""
                message = str(exc) if isinstance(exc, FlowError) else f"{type(exc).__name__}: {exc}"
                raise FlowError(f"step {name!r} failed: {message}{done}. Resume with --from {name}") from exc
            times[name] = round(time.perf_counter() - tick, 3)
            save_model(model, checkpoint_path(out, i + 1, name))
            times_path.write_text(json.dumps(times, indent=2) + "\n")
            log.write(f"--- step {i + 1:02d} {name} done in {times[name]:.2f} s\n")
    return model
