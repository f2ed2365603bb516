import json

import pytest

import bench.budget_w2a2 as budget
from bench.accuracy import BenchConfig, Row


def _run(name, bits, epochs, map50):
    return {"name": name, "bits": bits, "epochs": epochs, "map50": map50, "map50_95": map50 / 2,
            "train_images_per_s": 100.0, "train_seconds": 10.0}


def test_gaps_compare_with_float_at_the_same_epochs():
    runs = [_run("float", "float", 16, 0.80), _run("float", "float", 32, 0.90),
            _run("w2a2", "w2a2", 16, 0.60), _run("w2a2", "w2a2", 32, 0.85), _run("w2a2", "w2a2", 64, 0.88)]
    # 64 epochs has no float run: no gap is made up for it.
    assert budget.gaps(runs) == [{"name": "w2a2", "epochs": 16, "gap": 20.0},
                                 {"name": "w2a2", "epochs": 32, "gap": 5.0}]


def test_markdown_puts_budgets_side_by_side():
    runs = [_run("float", "float", 16, 0.8), _run("w2a2", "w2a2", 16, 0.6), _run("w2a2", "w2a2", 32, 0.7)]
    record = budget._record(BenchConfig(), runs, 90.0, 2)
    text = budget.to_markdown(record)
    assert "| row | 16 epochs | 32 epochs |" in text
    assert "| float | 0.800 |  |" in text and "| w2a2 | 0.600 (+20.0 pts) | 0.700 |" in text


def test_run_keeps_earlier_runs_and_trains_only_the_rest(tmp_path, monkeypatch):
    trained = []

    def fake_train_row(cfg, row, data):
        trained.append((row.name, cfg.epochs, cfg.work.name))

        class R:
            metrics = {"map50": 0.5 + cfg.epochs / 100, "map50_95": 0.3, "epochs": [{"images_per_s": 50.0}]}
        return R()

    monkeypatch.setattr(budget, "train_row", fake_train_row)
    base = BenchConfig(images=40, batch_size=8, work=tmp_path / "work", workers=1)
    rows = (Row("float", "float"), Row("w2a2", "w2a2"))
    budget.run(base, (2,), rows, tmp_path, "b")
    assert sorted(trained) == [("float", 2, "e2"), ("w2a2", 2, "e2")]
    trained.clear()
    record = budget.run(base, (2, 4), rows, tmp_path, "b", keep=True)
    # Longest budget first; the 2-epoch runs come from the file.
    assert trained == [("float", 4, "e4"), ("w2a2", 4, "e4")]
    assert [(r["name"], r["epochs"]) for r in record["runs"]] == [("float", 2), ("float", 4), ("w2a2", 2),
                                                                   ("w2a2", 4)]
    assert json.loads((tmp_path / "b.json").read_text())["gaps"] == record["gaps"]
    assert (tmp_path / "b.md").is_file() and (tmp_path / "b.png").is_file()
    with pytest.raises(SystemExit, match="lr differ"):
        budget.run(BenchConfig(images=40, batch_size=8, lr=1e-3, work=tmp_path / "work"), (2,), rows, tmp_path,
                   "b", keep=True)
