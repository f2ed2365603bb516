import numpy as np
import pytest

from quant_models.anchors import kmeans_anchors


def test_kmeans_finds_two_clear_clusters():
    rng = np.random.default_rng(0)
    small = rng.normal([0.1, 0.1], 0.005, (50, 2))
    wide = rng.normal([0.4, 0.2], 0.01, (50, 2))
    anchors = kmeans_anchors(np.concatenate([wide, small]), 2)
    assert anchors[0] == pytest.approx((0.1, 0.1), abs=0.01)
    assert anchors[1] == pytest.approx((0.4, 0.2), abs=0.02)


def test_kmeans_is_deterministic_and_needs_boxes():
    wh = np.random.default_rng(1).uniform(0.05, 0.5, (200, 2))
    assert kmeans_anchors(wh, 3) == kmeans_anchors(wh.copy(), 3)
    with pytest.raises(ValueError, match="no objects"):
        kmeans_anchors(np.zeros((0, 2)), 3)
