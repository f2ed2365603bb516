import numpy as np

from boards.runtime.io_spec import HostOp, IOSpec, Port


def test_host_ops_replay_in_order_and_survive_a_round_trip(tmp_path):
    scale = [0.5, 2.0]
    spec = IOSpec(
        input=Port("in", (1, 2, 2, 3), "UINT8", "NHWC", (HostOp("Transpose", perm=(0, 2, 3, 1)),)),
        outputs=(Port("out", (1, 1, 1, 2), "INT8", "NHWC", (
            HostOp("Transpose", perm=(0, 3, 1, 2)), HostOp("Mul", value=scale, shape=(1, 2, 1, 1)),
            HostOp("Add", value=[1.0, -1.0], shape=(1, 2, 1, 1)))),),
        model_config={"anchors": [[0.1, 0.2]]})
    spec.save(tmp_path / "io.json")
    loaded = IOSpec.load(tmp_path / "io.json")
    assert loaded == spec and (tmp_path / "io.json").read_text() == spec.to_json()
    images = np.arange(12, dtype=np.uint8).reshape(1, 3, 2, 2)
    assert loaded.host_input(images)[0, 1, 0].tolist() == [2, 6, 10]  # NCHW -> NHWC: pixel (1, 0), channels 0..2
    acc = np.array([[[[4, -3]]]])  # NHWC accumulators
    assert loaded.host_output(acc).reshape(-1).tolist() == [4 * 0.5 + 1.0, -3 * 2.0 - 1.0]
