"""bench/pipelining.py's report: one row per (build, tree levels), LUTs relative to L = 0, per-layer paths."""

from __future__ import annotations

from bench.pipelining import to_markdown


def _row(levels: int, lut: int, path: int) -> dict:
    return {"tree_levels": levels, "lut": lut, "ff": 1000 + levels, "bram18": 4, "dsp": 0, "longest_path": path,
            "longest_mac_path": path, "longest_other_path": 7, "mac_paths": {"MVAU_hls_0": path, "MVAU_hls_1": 3},
            "cycles_per_frame": 1234.0, "estimate_cycles_per_frame": 1200, "ratio_to_estimate": 1.028,
            "latency_cycles": 5000 + levels, "mismatches": 0}


def test_report_puts_each_level_beside_level_zero():
    record = {"date": "2026-12-01 00:00 UTC", "machine": "test", "frames": 2, "backpressure": 0.2,
              "nets": [{"title": "tinydet W4A4, pynq-z2", "rows": [_row(0, 2000, 12), _row(2, 2200, 6)]},
                       {"title": "ultranet W4A4, ultra96-v2", "rows": [], "error": "FlowError: no"}]}
    text = to_markdown(record)
    assert "| tinydet W4A4, pynq-z2 | 0 | 2,000 | 1,000 | 0 | 12 | 7 | 1,234 | 1.028 | 5,000 | 0 |" in text
    assert "| tinydet W4A4, pynq-z2 | 2 | 2,200 (1.100x) | 1,002 |" in text
    assert "build failed: FlowError: no" in text
    assert "| MVAU_hls_0 | 12 | 6 |" in text and "| layer | L=0 | L=2 |" in text
