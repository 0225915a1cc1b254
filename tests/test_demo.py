"""``mmoe demo`` end to end at a tiny size: both stages, the evaluation, and the files it promises."""

from __future__ import annotations

import json

import pandas as pd

from mmoe.demo import LANGUAGES, run_demo
from mmoe.languages import mmmb_file_code


def test_demo_writes_report_predictions_and_model(tmp_path):
    report = run_demo(tmp_path / "demo", train_records=48, test_per_language=4, stage1_steps=2, stage2_steps=2)

    written = json.loads((tmp_path / "demo/report.json").read_text())
    assert written == report
    assert set(report["accuracy"]) == {"overall", *LANGUAGES}
    assert all(0.0 <= v <= 1.0 for v in report["accuracy"].values()) and report["seconds"] > 0
    for language in LANGUAGES:
        predictions = pd.read_csv(tmp_path / f"demo/predictions/mmmb_{mmmb_file_code(language)}.tsv", sep="\t")
        assert len(predictions) == 4 and {"question", "A", "answer", "category", "prediction"} <= set(predictions.columns)
    hits = sum(report["accuracy"][lang] * 4 for lang in LANGUAGES)
    assert abs(report["accuracy"]["overall"] - hits / 24) < 1e-9  # overall pools the questions of all languages
    stage1 = [json.loads(line) for line in (tmp_path / "demo/stage1/metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in stage1] == [1, 2]
    assert (tmp_path / "demo/stage2/model").is_dir()

    records = json.loads((tmp_path / "demo/data/instruct/train.json").read_text(encoding="utf-8"))
    assert any("Options:" in turn["value"] for r in records for turn in r["conversations"])  # stage 2 asks MCQs
    align = json.loads((tmp_path / "demo/data/align/train.json").read_text(encoding="utf-8"))
    assert not any("Options:" in turn["value"] for r in align for turn in r["conversations"])  # stage 1 does not
