"""``mmoe bench`` at tiny sizes: every case runs, the JSON report has the documented schema and every
ratio is a positive finite number (timings are not asserted: they depend on the machine)."""

from __future__ import annotations

import json
import math

import pytest

from mmoe.bench.runner import CASES, SCHEMA
from mmoe.cli import main


@pytest.mark.slow
def test_bench_runs_every_case_and_writes_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--size", "tiny", "--warmup", "0", "--repeats", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["schema"] == SCHEMA and report["device"] == "cpu" and report["size"] == "tiny"
    assert set(report["cases"]) == set(CASES)
    for name, case in report["cases"].items():
        assert case["unit"] == "ms" and case["variants"] and case["ratios"], name
        for variant in case["variants"].values():
            assert 0 < variant["p25"] <= variant["median"] <= variant["p75"], name
        for label, ratio in case["ratios"].items():
            assert ratio["variant"] in case["variants"] or label.startswith("memory"), label
            for key in ("median", "p25", "p75"):
                assert math.isfinite(ratio[key]) and ratio[key] > 0, (name, label)
    step = report["cases"]["train_step"]["models"]
    assert all(m["peak_memory"]["bytes"] > 0 and m["tokens_per_s"]["median"] > 0 for m in step.values())
    assert step["full_ft"]["trainable"] > step["mole"]["trainable"] > step["peft_lora"]["trainable"] > 0
    assert report["cases"]["data_pipeline"]["cores_to_feed_step"] > 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in CASES)


def test_bench_lists_cases_and_rejects_unknown_ones(capsys):
    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in CASES)
    assert main(["bench", "no_such_case"]) == 2
    assert "no_such_case" in capsys.readouterr().err
