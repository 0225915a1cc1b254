"""Vanilla and circular scoring, hand-computed on MMBench-layout fixtures with predictions in many styles."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mmoe.eval import BenchmarkError, load_benchmark
from mmoe.eval.circular import expand, prepare
from mmoe.eval.report import acc_table
from mmoe.eval.score import score
from mmoe.eval.score_file import score_predictions

from tests.eval.mmbench_files import PREDICTIONS, mmbench_frame


def test_circular_scores_by_hand(mmbench_tsv):
    bench, choice = prepare(load_benchmark(mmbench_tsv))
    mode = choice.mode
    assert mode == "circular"
    s = score(bench, PREDICTIONS, mode).summary()
    assert s["overall"] == pytest.approx(2 / 4) and s["n_questions"] == 4 and s["n_correct"] == 2
    assert s["n_rows"] == 13 and s["n_unmatched"] == 1 and s["n_missing"] == 1
    assert s["by_category"] == {"action_recognition": 1.0, "identity_reasoning": 1.0, "image_style": 0.0, "ocr": 0.0}
    assert s["by_l2_category"] == {
        "attribute_reasoning": 1.0,
        "coarse_perception": 0.0,
        "finegrained_perception (cross-instance)": 1.0,
        "finegrained_perception (instance-level)": 0.0,
    }
    assert s["vanilla_all"] == pytest.approx(11 / 13) and s["vanilla_0"] == 1.0


def test_one_wrong_rotation_fails_the_question(mmbench_tsv):
    bench, choice = prepare(load_benchmark(mmbench_tsv))
    mode = choice.mode
    preds = {**PREDICTIONS, 2000007: "Swimming"}
    s = score(bench, preds, mode).summary()
    assert s["overall"] == pytest.approx(1 / 4) and s["by_category"]["action_recognition"] == 0.0


def test_vanilla_mode_counts_every_row(mmbench_tsv):
    bench, choice = prepare(load_benchmark(mmbench_tsv), "vanilla")
    mode = choice.mode
    s = score(bench, PREDICTIONS, mode).summary()
    assert mode == "vanilla" and s["n_questions"] == 13 and s["overall"] == pytest.approx(11 / 13)
    assert "vanilla_all" not in s and s["by_category"]["ocr"] == pytest.approx(3 / 4)


def test_generated_rotations_match_circular_files(tsv_writer):
    flat = load_benchmark(tsv_writer(mmbench_frame(rotations=False), "MMBench_DEV_EN.tsv"))
    assert not flat.has_rotations and len(flat) == 4
    full = load_benchmark(tsv_writer(mmbench_frame(), "full.tsv"))
    generated = expand(flat)
    assert sorted(r.index for r in generated.rows) == sorted(r.index for r in full.rows)
    reference = full.by_index()
    for row in generated.rows:
        assert row.options == reference[row.index].options and row.answer == reference[row.index].answer
        assert row.group == row.index % 1_000_000
    s = score(generated, PREDICTIONS, "circular").summary()
    assert s["overall"] == pytest.approx(0.5) and s["n_missing"] == 1


def test_rotation_offset_grows_and_abnormal_rows_stay_single(tsv_writer):
    frame = mmbench_frame(rotations=False)
    frame.loc[0, "index"] = 1_500_000
    frame["g_index"] = frame["index"]  # large base indices need an explicit g_index column
    frame.loc[1, "D"] = "Both A and B"
    bench = expand(load_benchmark(tsv_writer(frame, "mmbench_x.tsv")))
    indices = sorted(r.index for r in bench.rows)
    assert 11_500_000 in indices and 10_000_012 in indices  # offset 1e7
    assert [r.index for r in bench.rows if r.group == 7] == [7]  # "Both A and B" keeps it single-pass
    assert "g_index" in bench.columns


def test_mmmb_is_vanilla_without_l2(tsv_writer):
    frame = mmbench_frame(rotations=False).drop(columns=["L2-category"])
    bench, choice = prepare(load_benchmark(tsv_writer(frame, "mmmb_tr.tsv")))
    mode = choice.mode
    s = score(bench, {241: "Cevap: B", 7: "C şıkkı", 12: "B", 30: ""}, mode).summary()
    assert mode == "vanilla" and s["language"] == "tr" and s["by_l2_category"] == {}
    assert s["overall"] == pytest.approx(2 / 4) and s["n_unmatched"] == 1 and s["extraction_rules"]["empty"] == 1


def test_acc_csv_layout(mmbench_tsv):
    bench, choice = prepare(load_benchmark(mmbench_tsv))
    mode = choice.mode
    table = acc_table(score(bench, PREDICTIONS, mode))
    assert list(table.columns) == [
        "split", "Overall", "AR", "CP", "FP-C", "FP-S", "action_recognition", "identity_reasoning", "image_style", "ocr"
    ]
    assert table.loc[0, "split"] == "dev" and table.loc[0, "Overall"] == 0.5


def test_test_split_cannot_be_scored(tsv_writer):
    bench = load_benchmark(tsv_writer(mmbench_frame(answers=False, split="test"), "MMBench_TEST_EN.tsv"))
    with pytest.raises(BenchmarkError, match="no answer column"):
        score(bench, {}, "circular")


def test_score_file_from_other_tool(mmbench_tsv, tmp_path):
    """A VLMEvalKit-style predictions file: benchmark columns (no image) + prediction, some rows missing."""
    frame = mmbench_frame().drop(columns=["image"])
    frame["prediction"] = frame["index"].map(PREDICTIONS).fillna("")
    full = tmp_path / "Parrot_MMBench_DEV_EN_full.tsv"
    frame.to_csv(full, sep="\t", index=False)
    path = tmp_path / "Parrot_MMBench_DEV_EN.tsv"
    frame[frame["index"] != 3000030].to_csv(path, sep="\t", index=False)
    (summary,) = score_predictions(path, tmp_path / "out", [mmbench_tsv]).values()
    assert summary["overall"] == 0.5 and summary["n_missing"] == 1 and summary["mode"] == "circular"
    (alone,) = score_predictions(full, tmp_path / "out2").values()  # no benchmark: the predictions file carries the columns
    assert alone["overall"] == 0.5 and alone["n_questions"] == 4 and alone["n_unmatched"] == 2
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {"mode", "overall", "by_category", "by_l2_category", "n_questions", "n_unmatched"} <= set(written)
    assert (tmp_path / "out" / "MMBench_DEV_EN_acc.csv").is_file() and (tmp_path / "out" / "accuracy.png").stat().st_size > 0
    assert "| en |" in (tmp_path / "out" / "results.md").read_text()


def test_predictions_with_unknown_index_are_an_error(mmbench_tsv, tmp_path):
    path = tmp_path / "preds.tsv"
    pd.DataFrame({"index": [241, 99], "prediction": ["B", "A"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(BenchmarkError, match=r"row 2 \(index 99\), column 'index'"):
        score_predictions(path, tmp_path / "out", [mmbench_tsv])


def test_all_zero_chart_still_shows_every_bar(mmbench_tsv):
    """A 0 % bar has no height: each bar carries its value, so the chart is not an empty frame."""
    from mmoe.eval.report import chart_figure

    bench, choice = prepare(load_benchmark(mmbench_tsv))
    summary = score(bench, {}, choice.mode).summary()
    assert summary["overall"] == 0.0
    ax = chart_figure([summary]).axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["0"] * (1 + len(summary["by_category"]))
