"""Multi-process training (torch DDP): process-group setup and teardown, rank helpers, sharding, gathering.

What a run of W processes does, and why, so that it trains the very model a single process would with the same
flags (up to float summation order):
- ``--batch-size`` is the *global* batch. Every rank draws the same permutation and augments the same global batch
  with the same generator (augmentation is cheap and runs in batches on the device), then runs its model on its
  contiguous slice (:func:`shard`).
- The head maps of all slices are gathered differentiably (:func:`forward_global`), so every rank computes the
  loss of the whole global batch, whatever the loss normalises by (positives, cells, the teacher's objectness).
  The gather's backward sums each slice's gradient over the ranks, which makes every rank's objective W times the
  global loss; DDP's gradient average then gives exactly the single-process gradient, and gradient clipping
  after it is the same on every rank.
- BatchNorm statistics are over the global batch: torch's ``SyncBatchNorm`` on CUDA; on the CPU (gloo), where
  torch's ``SyncBatchNorm`` refuses to run, :class:`GlobalBatchNorm2d` all-reduces the moments itself.
- Learned quantizer scales are Parameters (``quant_models.quantizers``), so DDP's gradient all-reduce keeps them
  equal; every buffer (BN running statistics, Brevitas' constant buffers) is broadcast from rank 0 by DDP.
- Validation shards the split, gathers the detections on rank 0, scores the whole split there and broadcasts the
  figure, so "best checkpoint" decisions agree. Only rank 0 writes files or prints.

Library code reads no environment: the CLI hands torchrun's variables to :func:`dist_from_env`.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
# torch's own replacement for the deprecated torch.distributed.nn.functional: differentiable collectives.
import torch.distributed._functional_collectives as collectives
from torch import nn

from quant_models.data import DetectionTensors
from quant_models.decode import as_outputs
from quant_models.evaluate import predict, targets_of
from quant_models.metrics import MapResult, detection_map

BACKENDS = ("nccl", "gloo")
# torchrun's variables, read by the CLI only (never by library code).
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistError(ValueError):
    """A multi-process run that cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class DistConfig:
    """One process of a multi-process run: its rank, the world size, and where the processes meet.

    ``init_method`` is a torch rendezvous URL (``tcp://HOST:PORT``, ``file:///path``, or ``env://`` for a caller
    that set torch's variables itself); ``local_rank`` picks the GPU on this node (``cuda:LOCAL_RANK``);
    ``backend`` None means nccl on CUDA, gloo on the CPU."""

    rank: int
    world_size: int
    init_method: str
    local_rank: int = 0
    backend: str | None = None
    timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise DistError(f"rank {self.rank} of world size {self.world_size}: need world size >= 1 and "
                            "0 <= rank < world size (launch with torchrun, which sets RANK and WORLD_SIZE)")
        if self.local_rank < 0:
            raise DistError(f"local rank {self.local_rank} must be >= 0 (LOCAL_RANK, set by torchrun)")
        if self.backend is not None and self.backend not in BACKENDS:
            raise DistError(f"backend {self.backend!r}: use one of {', '.join(BACKENDS)} (or none: nccl on CUDA, "
                            "gloo on the CPU)")
        if not self.init_method.startswith(("tcp://", "file://", "env://")):
            raise DistError(f"init method {self.init_method!r}: give tcp://HOST:PORT, file:///PATH or env://")


def dist_from_env(environ: Mapping[str, str]) -> DistConfig | None:
    """The :class:`DistConfig` of a process started by torchrun, from its variables in ``environ`` (the CLI passes
    ``os.environ``); None when ``WORLD_SIZE`` is not set (a plain ``qdet train``)."""
    if "WORLD_SIZE" not in environ:
        return None
    missing = [v for v in TORCHRUN_VARS if v not in environ]
    if missing:
        raise DistError(f"WORLD_SIZE is set but {', '.join(missing)} not: start multi-process training with "
                        "torchrun (see the README, 'Training on several GPUs')")
    try:
        rank, world, local = (int(environ[v]) for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError as exc:
        raise DistError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({exc})") from exc
    return DistConfig(rank=rank, world_size=world, local_rank=local,
                      init_method=f"tcp://{environ['MASTER_ADDR']}:{environ['MASTER_PORT']}")


def is_main(cfg: DistConfig | None) -> bool:
    """True on the process that writes files and prints: rank 0, or the only process."""
    return cfg is None or cfg.rank == 0


def rank_device(cfg: DistConfig | None, device: str) -> str:
    """The torch device of this process: ``device`` itself in a single-process run; under DDP ``cpu`` or
    ``cuda:LOCAL_RANK`` (one GPU per process, so ``--device`` must be plain ``cuda``)."""
    if cfg is None or device == "cpu":
        return device
    if device != "cuda":
        raise DistError(f"--device {device} under torchrun: give --device cuda (each process takes the GPU of its "
                        "LOCAL_RANK; limit the GPUs with CUDA_VISIBLE_DEVICES) or --device cpu")
    count = torch.cuda.device_count()
    if cfg.local_rank >= count:
        raise DistError(f"LOCAL_RANK {cfg.local_rank} but this node has {count} CUDA device(s): start at most "
                        f"{count} processes per node (torchrun --nproc-per-node {count})")
    return f"cuda:{cfg.local_rank}"


def backend_of(cfg: DistConfig, device: str) -> str:
    """nccl for CUDA tensors, gloo for CPU ones, unless ``cfg.backend`` says otherwise."""
    return cfg.backend or ("nccl" if device.startswith("cuda") else "gloo")


@contextlib.contextmanager
def process_group(cfg: DistConfig | None, device: str) -> Iterator[None]:
    """Join the process group of ``cfg`` for the duration (nothing for None). A group the caller already set up
    is used and left in place (its rank and size must match); one made here is torn down on the way out."""
    if cfg is None:
        yield
        return
    created = not dist.is_initialized()
    if created:
        if device.startswith("cuda"):
            torch.cuda.set_device(device)  # before NCCL starts, so each process talks to its own GPU
        dist.init_process_group(backend_of(cfg, device), init_method=cfg.init_method, rank=cfg.rank,
                                world_size=cfg.world_size, timeout=datetime.timedelta(seconds=cfg.timeout_s))
    elif (dist.get_rank(), dist.get_world_size()) != (cfg.rank, cfg.world_size):
        raise DistError(f"a process group of rank {dist.get_rank()}/{dist.get_world_size()} is already set up, "
                        f"but the run asks for rank {cfg.rank}/{cfg.world_size}")
    try:
        yield
        if created:
            dist.barrier()  # nobody leaves while another rank still talks to it
    finally:
        if created:
            dist.destroy_process_group()


def shard_sizes(total: int, world: int) -> list[int]:
    """How many of ``total`` items each rank takes: contiguous slices differing by at most one, earlier ranks
    the larger ones."""
    base, extra = divmod(total, world)
    return [base + (r < extra) for r in range(world)]


def shard(total: int, cfg: DistConfig | None) -> slice:
    """This rank's contiguous slice of ``total`` items (all of them in a single-process run)."""
    if cfg is None:
        return slice(0, total)
    sizes = shard_sizes(total, cfg.world_size)
    start = sum(sizes[:cfg.rank])
    return slice(start, start + sizes[cfg.rank])


def check_batches(images: int, batch_size: int, cfg: DistConfig | None) -> None:
    """Every step must give every rank at least one image (an empty slice has no BatchNorm statistics); raises
    :class:`DistError` naming the batch size otherwise."""
    if cfg is None:
        return
    smallest = min(batch_size, images % batch_size or batch_size)  # the last batch, or the only one
    if smallest < cfg.world_size:
        raise DistError(f"--batch-size {batch_size} (the global batch) with {images} training images gives a batch "
                        f"of {smallest} image(s), fewer than the {cfg.world_size} processes: choose a batch size of "
                        f"at least {cfg.world_size} whose last batch ({images} mod batch size) is 0 or at least "
                        f"{cfg.world_size}")


def gather_batch(parts: Sequence[torch.Tensor], total: int, cfg: DistConfig) -> tuple[torch.Tensor, ...]:
    """Concatenate every rank's slice (of :func:`shard`) of ``total`` items, in rank order, for each tensor of
    ``parts``. Differentiable: the backward hands each rank the sum over ranks of its slice's gradient."""
    sizes = shard_sizes(total, cfg.world_size)
    top = max(sizes)
    out = []
    for t in parts:
        # all_gather wants equal shapes: pad the short slices, and cut the padding off again after.
        padded = torch.cat([t, t.new_zeros((top - len(t), *t.shape[1:]))]) if len(t) < top else t
        pieces = collectives.all_gather_single(padded, 0, dist.group.WORLD).split(top)
        out.append(torch.cat([p[:n] for p, n in zip(pieces, sizes)]))
    return tuple(out)


def forward_global(module: nn.Module, images: torch.Tensor, cfg: DistConfig | None) -> tuple[torch.Tensor, ...]:
    """The head maps of the global batch ``images``: the module on all of it in a single-process run; under DDP
    on this rank's slice, gathered from all ranks (see the module notes for why the gradient is then exact)."""
    if cfg is None:
        return as_outputs(module(images))
    local = as_outputs(module(images[shard(len(images), cfg)]))
    return gather_batch(local, len(images), cfg)


def _all_sum(t: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over the ranks (the backward sums the gradients too)."""
    return collectives.all_reduce(t, "sum", dist.group.WORLD)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d whose training statistics are over the global batch of all processes, for CPU (gloo) runs,
    where torch's ``SyncBatchNorm`` refuses to run. Same parameters and buffers (and state_dict keys) as
    ``nn.BatchNorm2d``; in eval mode, or without a process group of 2+, it is ``nn.BatchNorm2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        dims = (0, 2, 3)
        # Two passes (mean, then centred squares) as F.batch_norm does: E[x^2] - E[x]^2 cancels badly.
        first = _all_sum(torch.cat([x.sum(dims), x.new_tensor([x.numel() / channels])]))
        count = first[-1]
        mean = first[:channels] / count
        centred = x - mean.view(1, -1, 1, 1)
        var = _all_sum((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                unbiased = var.detach() * count / (count - 1).clamp_min(1)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1) if self.affine else y


def _to_global_bn(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats).to(child.running_mean.device)
            # The very Parameter and buffer objects, so nothing that already holds them is orphaned.
            new.weight, new.bias = child.weight, child.bias
            new.running_mean, new.running_var = child.running_mean, child.running_var
            new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        else:
            _to_global_bn(child)
    return module


def synchronise_batchnorm(model: nn.Module, device: str) -> nn.Module:
    """``model`` with its BatchNorm layers computing training statistics over the global batch (in place):
    torch's SyncBatchNorm on CUDA, :class:`GlobalBatchNorm2d` on the CPU."""
    if device.startswith("cuda"):
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _to_global_bn(model)


def wrap(model: nn.Module, cfg: DistConfig, device: str) -> nn.Module:
    """``model`` (weights loaded, BatchNorm synchronised, on ``device``) in DistributedDataParallel. Build the
    optimizer on ``model.parameters()`` after loading weights: Brevitas' load_state_dict replaces Parameters."""
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    # DDP's default syncs every buffer from rank 0 at each forward: BN statistics and Brevitas' buffers stay equal.
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def evaluate_sharded(model: nn.Module, tensors: DetectionTensors, device: str, cfg: DistConfig) -> MapResult:
    """mAP of the whole split, each rank predicting its slice: rank 0 gathers the detections, scores them as a
    single process would, and broadcasts the result to every rank."""
    part = shard(len(tensors.images), cfg)
    preds = predict(model, tensors.images[part], device=device)
    gathered: list[list] | None = [[] for _ in range(cfg.world_size)] if is_main(cfg) else None
    dist.gather_object(preds, gathered, dst=0)
    result: list[Any] = [None]
    if gathered is not None:
        result[0] = detection_map([d for chunk in gathered for d in chunk], targets_of(tensors),
                                  tensors.class_names)
    dist.broadcast_object_list(result, src=0)  # rank 0 always sets it
    return result[0]


__all__ = ["BACKENDS", "TORCHRUN_VARS", "DistConfig", "DistError", "GlobalBatchNorm2d", "backend_of",
           "check_batches", "dist_from_env", "evaluate_sharded", "forward_global", "gather_batch", "is_main",
           "process_group", "rank_device", "shard", "shard_sizes", "synchronise_batchnorm", "wrap"]
