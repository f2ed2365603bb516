"""Multi-process (DDP) training on the CPU with gloo: two spawned ranks against one process with the same global
batch. The ranks must agree bit for bit (DDP all-reduces the gradients, broadcasts the buffers); against the
single process they agree only to float tolerance, because the gathered loss, the all-reduced gradient and the
BatchNorm moments sum in another order."""

import math
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from quant_models.checkpoint import load_model, read_checkpoint
from quant_models.distributed import (DistConfig, DistError, check_batches, dist_from_env, rank_device, shard,
                                      shard_sizes)
from quant_models.models import DetectorConfig, build_model
from quant_models.train import TrainConfig, train

WORLD = 2
# 16 training images in global batches of 7: steps of 7, 7 and 2 images, so the ranks get 4+3, 4+3 and 1+1
# (uneven slices and a short last batch both occur).
BATCH = 7


def _cfg(data: Path, out: Path, teacher: Path | None, distributed: DistConfig | None = None) -> TrainConfig:
    return TrainConfig(data=data, out=out, model="tinydet", bits="w4a4", width=0.25, input_size=(32, 32), epochs=1,
                       batch_size=BATCH, lr=5e-3, warmup_epochs=0.0, teacher=teacher, progress=False,
                       distributed=distributed)


def _act_scales(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: module.act_quant.scale().detach().clone() for name, module in model.named_modules()
            if hasattr(module, "act_quant") and module.act_quant.is_quant_enabled}


def _rank(rank: int, data: Path, root: Path, teacher: Path, rendezvous: Path) -> None:
    torch.set_num_threads(1)
    cfg = _cfg(data, root / f"run{rank}", teacher, DistConfig(rank=rank, world_size=WORLD,
                                                                init_method=f"file://{rendezvous}"))
    result = train(cfg)
    assert result.model is not None
    torch.save({"state": result.model.state_dict(), "scales": _act_scales(result.model),
                "metrics": result.metrics}, root / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quant_models.data import generate_synthetic

    root = tmp_path_factory.mktemp("ddp") / "data"
    generate_synthetic(root, images=20, seed=5, size=(64, 64), fmt="coco", val_fraction=0.2)  # 16 train, 4 val
    return root


@pytest.mark.slow
def test_two_gloo_ranks_agree_with_each_other_and_with_one_process(tiny_data, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher = train(TrainConfig(data=tiny_data, out=tmp_path / "teacher", bits=None, width=0.25,
                                    input_size=(32, 32), epochs=1, batch_size=8, progress=False)).best
        single = train(_cfg(tiny_data, tmp_path / "single", teacher))
        mp.spawn(_rank, args=(tiny_data, tmp_path, teacher, tmp_path / "rendezvous"), nprocs=WORLD, join=True)
    finally:
        torch.set_num_threads(threads)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    assert single.model is not None
    reference, ref_scales = single.model.state_dict(), _act_scales(single.model)

    # The ranks hold the same model, bit for bit: weights, BN statistics, quantizer scales.
    assert ranks[0]["state"].keys() == ranks[1]["state"].keys() == reference.keys()
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), key
    assert ranks[0]["scales"].keys() == ranks[1]["scales"].keys() == ref_scales.keys() and len(ref_scales) >= 5
    for name, scale in ranks[0]["scales"].items():
        assert torch.equal(scale, ranks[1]["scales"][name]), name

    # ... and the one a single process trains with the same global batch, up to float summation order.
    start = read_checkpoint(tmp_path / "single" / "last.pt")
    for key, value in ranks[0]["state"].items():
        if value.is_floating_point():
            gap = (value - reference[key]).abs().max()
            assert torch.allclose(value, reference[key], rtol=1e-4, atol=1e-5), (key, gap)
        else:
            assert torch.equal(value, reference[key]), key
    for name, scale in ranks[0]["scales"].items():
        assert torch.allclose(scale, ref_scales[name], rtol=1e-4, atol=1e-6), name
    torch.manual_seed(0)  # the run's seed: its starting weights
    untrained = build_model(DetectorConfig.from_dict(start["model_config"])).state_dict()
    moved = sum(not torch.allclose(untrained[k], v, atol=1e-4) for k, v in reference.items() if v.is_floating_point())
    assert moved >= 10, moved  # the steps did change most weights and statistics (3 steps, lr 5e-3)
    # Same loss per epoch and the same val mAP (sharded, gathered, scored on rank 0, broadcast to rank 1).
    for r in range(WORLD):
        ddp_epoch, one_epoch = ranks[r]["metrics"]["epochs"][0], single.metrics["epochs"][0]
        assert math.isclose(ddp_epoch["loss"], one_epoch["loss"], rel_tol=1e-5), (ddp_epoch, one_epoch)
        assert math.isclose(ranks[r]["metrics"]["map50"], single.metrics["map50"], abs_tol=1e-6)

    # Only rank 0 wrote a run (each rank was given its own --out here, to tell their files apart), and its
    # checkpoint is the plain model (no "module." keys), loadable as any other, holding rank 0's weights.
    assert not (tmp_path / "run1").exists()
    for name in ("last.pt", "best.pt", "metrics.json", "curves.png"):
        assert (tmp_path / "run0" / name).is_file(), name
    loaded, ckpt = load_model(tmp_path / "run0" / "last.pt")
    assert not any(k.startswith("module.") for k in ckpt["model"])
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, ranks[0]["state"][key]), key
    assert ckpt["train_config"]["distributed"]["world_size"] == WORLD
    # A single-process run stores the config it stored before DDP existed (no 'distributed' entry at all).
    assert "distributed" not in start["train_config"]


def test_shards_cover_the_batch_in_rank_order():
    assert shard_sizes(7, 2) == [4, 3] and shard_sizes(2, 2) == [1, 1] and shard_sizes(9, 4) == [3, 2, 2, 2]
    parts = [shard(7, DistConfig(rank=r, world_size=3, init_method="file:///x")) for r in range(3)]
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 5), (5, 7)]
    assert shard(7, None) == slice(0, 7)


def test_a_batch_that_leaves_a_rank_without_images_is_refused():
    two = DistConfig(rank=0, world_size=2, init_method="file:///x")
    check_batches(16, 7, two)  # last batch of 2: one image each
    with pytest.raises(DistError, match="--batch-size 5 .* 1 image"):
        check_batches(16, 5, two)  # last batch of 1
    with pytest.raises(DistError, match="--batch-size 1"):
        check_batches(16, 1, two)
    check_batches(16, 5, None)  # a single process takes any batch


def test_torchrun_variables_become_the_config():
    env = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    assert dist_from_env(env) == DistConfig(rank=1, world_size=4, local_rank=1, init_method="tcp://node0:29500")
    assert dist_from_env({"PATH": "/bin"}) is None
    with pytest.raises(DistError, match="MASTER_PORT"):
        dist_from_env({k: v for k, v in env.items() if k != "MASTER_PORT"})
    with pytest.raises(DistError, match="rank 4 of world size 4"):
        dist_from_env({**env, "RANK": "4"})


def test_each_rank_takes_its_own_device():
    one = DistConfig(rank=1, world_size=2, local_rank=1, init_method="file:///x")
    assert rank_device(one, "cpu") == "cpu" and rank_device(None, "cuda:1") == "cuda:1"
    with pytest.raises(DistError, match="--device cuda:1 under torchrun: give --device cuda"):
        rank_device(one, "cuda:1")  # the rank's GPU is its LOCAL_RANK's
