import json
from dataclasses import asdict

import pytest

from bench.accuracy import BenchConfig, Row, train_row, checks, to_markdown


def _row(name, bits, map50, speed):
    return {"name": name, "bits": bits, "map50": map50, "map50_95": map50 / 2, "best_map50": map50,
            "params": 10, "weight_kib": 1.0, "gmacs": 0.1, "gbops": 1.0, "train_images_per_s": speed,
            "train_seconds": 1.0, "box_weight": 0.2}


def test_checks_apply_the_issue_bounds():
    rows = [_row("float", "float", 0.90, 1000), _row("w4a4", "w4a4", 0.885, 390),
            _row("w2a2", "w2a2", 0.83, 380), _row("w2a2 first/last 8", "w2a2,first=8,last=8", 0.85, 400),
            _row("w8a8", "w8a8", 0.5, 400)]
    got = {c["check"]: (c["value"], c["passed"]) for c in checks(rows)}
    assert got == {
        "w4a4 within 2 mAP@0.5 points of float": (1.5, True),
        "w2a2 within 6 mAP@0.5 points of float": (7.0, False),
        "w2a2 first/last 8 within 6 mAP@0.5 points of float": (5.0, True),
        "w4a4 training speed >= 1/2.5 of float": (0.39, False),
    }


def test_markdown_lists_every_row_and_check():
    rows = [_row("float", "float", 0.9, 1000), _row("w4a4", "w4a4", 0.9, 500)]
    record = {"title": "t", "date": "d", "device": "cpu", "torch": "x", "config": {}, "data_seconds": 1.0,
              "total_seconds": 60.0, "rows": rows, "checks": checks(rows)}
    text = to_markdown(record)
    assert "| float | 0.2 | 0.900 |" in text and "| w4a4 | 0.2 | 0.900 |" in text and "0.50x" in text
    assert text.count("| pass |") == 2


def test_checks_compare_with_the_float_row_of_the_same_loss():
    rows = [_row("float", "float", 0.80, 1000), _row("float box x4", "float", 0.86, 1000),
            _row("w2a2 box x4", "w2a2", 0.81, 400)]
    rows[1]["box_weight"] = rows[2]["box_weight"] = 0.2
    rows[0]["box_weight"] = 0.05
    got = {c["check"]: (c["value"], c["passed"]) for c in checks(rows)}
    # 0.81 is above plain float, but 5 points below the float row trained with the same box weight.
    assert got == {"w2a2 box x4 within 6 mAP@0.5 points of float box x4": (5.0, True)}


def test_warm_start_must_leave_quantized_epochs(tmp_path):
    cfg = BenchConfig(epochs=4, work=tmp_path)
    with pytest.raises(ValueError, match="leaves no quantized epoch"):
        train_row(cfg, Row("x", "w2a2", float_share=1.0), tmp_path)


def _results(path, cfg, rows):
    import json
    from dataclasses import asdict

    path.write_text(json.dumps({"config": {k: str(v) for k, v in asdict(cfg).items()}, "rows": rows,
                                "total_seconds": 42.0}))


def test_kept_rows_come_from_an_earlier_run_with_the_same_budget(tmp_path):
    from bench.accuracy import _kept_rows

    cfg = BenchConfig(work=tmp_path, device="cuda", workers=16)
    _results(tmp_path / "a.json", cfg, [_row("float", "float", 0.9, 1000), _row("w4a4", "w4a4", 0.9, 500)])
    # Device and worker count are not part of the budget; the rows come back in the order asked for.
    rows, seconds = _kept_rows(BenchConfig(work=tmp_path / "x"), tmp_path / "a.json",
                               (Row("w4a4", "w4a4"), Row("float", "float")))
    assert [r["name"] for r in rows] == ["w4a4", "float"] and seconds == 42.0
    with pytest.raises(SystemExit, match="epochs differ"):
        _kept_rows(BenchConfig(work=tmp_path, epochs=3), tmp_path / "a.json", (Row("float", "float"),))
    with pytest.raises(SystemExit, match=r"has no row \['w2a2'\]"):
        _kept_rows(cfg, tmp_path / "a.json", (Row("w2a2", "w2a2"),))
    with pytest.raises(SystemExit, match="no earlier results"):
        _kept_rows(cfg, tmp_path / "missing.json", (Row("float", "float"),))


def test_other_architectures_are_compared_not_checked():
    from bench.accuracy import ROWS

    rows = [_row("float", "float", 0.90, 1000), _row("w4a4", "w4a4", 0.89, 500),
            {**_row("mobiledet-w4a4", "w4a4", 0.50, 300), "arch": "mobiledet"}]
    # tinydet's precision bounds apply to tinydet rows only: mobiledet's 40-point gap is not a failed check.
    assert [c["check"] for c in checks(rows)] == ["w4a4 within 2 mAP@0.5 points of float",
                                                  "w4a4 training speed >= 1/2.5 of float"]
    mobile = [r for r in ROWS if r.arch == "mobiledet"]
    assert [(r.name, r.bits) for r in mobile] == [("mobiledet-w4a4", "w4a4")]
    yolo = [r for r in ROWS if r.arch == "tinyyolo"]
    assert [(r.name, r.bits, r.width) for r in yolo] == [("tinyyolo-w4a4", "w4a4", 1.0)]
    rows.append({**_row("tinyyolo-w4a4", "w4a4", 0.40, 200), "arch": "tinyyolo"})
    assert len(checks(rows)) == 2


def test_the_cpu_section_compares_the_three_architectures():
    from bench.accuracy import ROWS, SECTIONS

    names, title = SECTIONS["cpu-arch"]
    assert names == ("w4a4", "mobiledet-w4a4", "tinyyolo-w4a4") and "tinyyolo" in title
    assert {r.arch for r in ROWS if r.name in names} == {"tinydet", "mobiledet", "tinyyolo"}
    assert {r.bits for r in ROWS if r.name in names} == {"w4a4"}


def test_rows_train_their_own_architecture_and_width(tmp_path, monkeypatch):
    import bench.accuracy as acc

    seen = []
    monkeypatch.setattr(acc, "train", lambda cfg: seen.append(cfg))
    acc.train_row(BenchConfig(epochs=4, work=tmp_path), Row("m", "w4a4", arch="mobiledet", width=1.35), tmp_path)
    acc.train_row(BenchConfig(epochs=4, work=tmp_path), Row("t", "w4a4"), tmp_path)
    assert [(c.model, c.width, c.bits, c.epochs) for c in seen] == [("mobiledet", 1.35, "w4a4", 4),
                                                                    ("tinydet", 1.0, "w4a4", 4)]


def _record(rows, title="t"):
    return {"title": title, "date": "2026-12-01", "device": "cpu", "machine": "Xeon, 2 cores", "torch": "x",
            "cpu_threads": 2, "config": {"images": "1200", "epochs": "16", "batch_size": "32", "lr": "0.003",
                                         "seed": "0", "device": "cpu"},
            "data_seconds": 1.0, "total_seconds": 60.0, "rows": rows, "checks": checks(rows)}


def test_a_section_leaves_the_main_table_and_plot_alone(tmp_path):
    from bench.accuracy import save

    main = _record([_row("float", "float", 0.9, 1000), _row("w4a4", "w4a4", 0.9, 500)])
    save(main, tmp_path)
    main_md, png = (tmp_path / "accuracy.md").read_text(), (tmp_path / "accuracy.png").read_bytes()
    section = _record([{**_row("w4a4", "w4a4", 0.7, 50), "arch": "tinydet", "width": 1.0, "weight_bits": 400},
                       {**_row("mobiledet-w4a4", "w4a4", 0.6, 30), "arch": "mobiledet", "width": 1.35,
                        "weight_bits": 401}], title="cpu comparison")
    save(section, tmp_path, section="cpu-arch")
    md = (tmp_path / "accuracy.md").read_text()
    assert md.startswith(main_md) and (tmp_path / "accuracy.png").read_bytes() == png
    assert "## cpu comparison (section `cpu-arch`)" in md and "Xeon, 2 cores" in md
    assert "| mobiledet-w4a4 | mobiledet | 1.35 | w4a4 | 0.600 |" in md
    record = json.loads((tmp_path / "accuracy.json").read_text())
    assert [r["map50"] for r in record["rows"]] == [0.9, 0.9]  # the main rows, untouched
    assert [r["name"] for r in record["sections"]["cpu-arch"]["rows"]] == ["w4a4", "mobiledet-w4a4"]
    # A later main run keeps the section.
    save(_record([_row("float", "float", 0.8, 1000)]), tmp_path)
    record = json.loads((tmp_path / "accuracy.json").read_text())
    assert record["rows"][0]["map50"] == 0.8 and "cpu-arch" in record["sections"]
    assert "| mobiledet-w4a4 | mobiledet |" in (tmp_path / "accuracy.md").read_text()


def test_kept_rows_of_a_section(tmp_path):
    from bench.accuracy import _kept_rows

    cfg = BenchConfig(work=tmp_path)
    section = {"config": {k: str(v) for k, v in asdict(cfg).items()}, "rows": [_row("w4a4", "w4a4", 0.7, 50)],
               "total_seconds": 7.0}
    (tmp_path / "a.json").write_text(json.dumps({"rows": [], "config": {}, "sections": {"cpu-arch": section}}))
    rows, seconds = _kept_rows(cfg, tmp_path / "a.json", (Row("w4a4", "w4a4"),), section="cpu-arch")
    assert [r["map50"] for r in rows] == [0.7] and seconds == 7.0
    with pytest.raises(SystemExit, match="no section 'other'"):
        _kept_rows(cfg, tmp_path / "a.json", (Row("w4a4", "w4a4"),), section="other")
