"""Scoring VLMEvalKit-style predictions files: no invented rows, rows checked against the benchmark,
collection files split per SUB_DATASET, and the two missing-row policies."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mmoe.cli import main
from mmoe.eval import BenchmarkError, load_benchmark
from mmoe.eval.score import score
from mmoe.eval.score_file import score_predictions

from tests.eval.mmbench_files import PREDICTIONS, mmbench_frame


def perfect(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows as a predictions file (no image) answered right on every row."""
    out = frame.drop(columns=["image"]).copy()
    out["prediction"] = out["answer"]
    return out


def test_scoring_never_invents_rotations(tsv_writer, tmp_path):
    """An MMBench-named file without circular copies: VLMEvalKit scores each question on its one row."""
    bench = tsv_writer(mmbench_frame(rotations=False), "MMBench_DEV_EN.tsv")
    preds = perfect(mmbench_frame(rotations=False))
    preds.loc[preds["index"] == 12, "prediction"] = "C"  # one wrong of four
    path = tmp_path / "Model_MMBench_DEV_EN.tsv"
    preds.to_csv(path, sep="\t", index=False)
    for benchmarks in ([bench], []):
        (summary,) = score_predictions(path, tmp_path / "out", benchmarks).values()
        assert summary["overall"] == pytest.approx(0.75) and summary["mode"] == "circular"
        assert summary["n_rows"] == 4 and summary["n_missing"] == 0 and summary["n_questions"] == 4


def test_predictions_rotated_the_other_way_are_refused_with_the_index(tsv_writer, tmp_path):
    """VLMEvalKit's circular tool rotates b,c,d,a; the official files d,a,b,c. Same indices, other rows."""
    bench = tsv_writer(mmbench_frame(), "MMBench_DEV_EN.tsv")
    other = perfect(mmbench_frame(direction=-1))
    path = tmp_path / "Model_MMBench_DEV_EN.tsv"
    other.to_csv(path, sep="\t", index=False)
    with pytest.raises(BenchmarkError, match=r"Model_MMBench_DEV_EN.tsv, row 4 \(index 1000007\), column 'A': A is 'Running' here but 'Cycling'"):
        score_predictions(path, tmp_path / "out", [bench])
    (alone,) = score_predictions(path, tmp_path / "alone").values()  # scored on its own rows: a perfect model
    assert alone["overall"] == 1.0 and alone["n_rows"] == 13


def test_predictions_with_another_answer_are_refused(tsv_writer, tmp_path):
    bench = tsv_writer(mmbench_frame(), "MMBench_DEV_EN.tsv")
    preds = perfect(mmbench_frame())
    preds.loc[preds["index"] == 7, "answer"] = "A"
    path = tmp_path / "p.tsv"
    preds.to_csv(path, sep="\t", index=False)
    with pytest.raises(BenchmarkError, match=r"index 7\), column 'answer': answer is 'A' here but 'C'"):
        score_predictions(path, tmp_path / "out", [bench])


def collection(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """VLMEvalKit's ConcatDataset output: SUB_DATASET, original_index, and index re-numbered 0..N-1."""
    parts = []
    for name, frame in frames.items():
        part = perfect(frame)
        part["SUB_DATASET"] = name
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["original_index"] = out.pop("index")
    out.insert(0, "index", range(len(out)))
    return out


def test_collection_files_are_split_per_sub_dataset(tsv_writer, tmp_path):
    mmmb = mmbench_frame(rotations=False).drop(columns=["L2-category"])
    frame = collection({"MMBench_dev_en": mmbench_frame(), "MMBench_dev_cn": mmbench_frame(), "MMMB_ar": mmmb})
    frame.loc[(frame["SUB_DATASET"] == "MMBench_dev_cn") & (frame["original_index"] == 2000007), "prediction"] = "B"
    frame.loc[(frame["SUB_DATASET"] == "MMMB_ar") & (frame["original_index"] == 12), "prediction"] = "الإجابة: ب"
    path = tmp_path / "Parrot_MTL_MMBench_DEV.xlsx"
    frame.to_excel(path, index=False)
    summaries = score_predictions(path, tmp_path / "out")
    assert list(summaries) == ["MMBench_dev_en", "MMBench_dev_cn", "MMMB_ar"]
    en, cn, ar = summaries.values()
    assert (en["mode"], en["n_questions"], en["n_rows"], en["overall"]) == ("circular", 4, 13, 1.0)
    assert (cn["language"], cn["overall"]) == ("zh", pytest.approx(0.75))  # one rotation of question 7 wrong
    assert (ar["mode"], ar["language"], ar["n_questions"], ar["overall"]) == ("vanilla", "ar", 4, pytest.approx(0.75))
    combined = pd.read_csv(tmp_path / "out" / "all_acc.csv")
    assert list(combined["DATASET"]) == ["MMBench_dev_en", "MMBench_dev_cn", "MMMB_ar"]
    files = [tsv_writer(mmbench_frame(), "mmbench_dev_cn.tsv"), tsv_writer(mmmb, "mmmb_ar.tsv")]
    again = score_predictions(path, tmp_path / "out2", files)
    assert again["MMBench_dev_cn"]["benchmark_file"].endswith("mmbench_dev_cn.tsv")
    assert again["MMBench_dev_cn"]["overall"] == cn["overall"] and again["MMMB_ar"]["overall"] == ar["overall"]


def test_missing_policies(mmbench_tsv):
    """Strict: a missing row fails its question. VLMEvalKit: questions without pass 0 dropped, groups on rows present."""
    bench = load_benchmark(mmbench_tsv)
    preds = {k: v for k, v in PREDICTIONS.items() if k != 12}  # 3000030 is absent too
    strict = score(bench, preds, "circular").summary()
    assert strict["overall"] == pytest.approx(2 / 4) and strict["n_missing"] == 2
    assert strict["missing_indices"] == [12, 3000030] and strict["n_questions_dropped"] == 0
    lenient = score(bench, preds, "circular", missing="vlmevalkit").summary()
    assert lenient["overall"] == 1.0 and lenient["n_questions"] == 3 and lenient["n_questions_dropped"] == 1
    assert lenient["missing_policy"] == "vlmevalkit" and lenient["n_missing"] == 2
    vanilla = score(bench, preds, "vanilla", missing="vlmevalkit").summary()
    assert vanilla["n_questions"] == 11 and vanilla["overall"] == pytest.approx(10 / 11)


def test_cli_missing_option_prints_the_effect(mmbench_tsv, tmp_path, capsys):
    frame = mmbench_frame().drop(columns=["image"])
    frame["prediction"] = frame["index"].map(PREDICTIONS)
    path = tmp_path / "preds.tsv"
    frame[frame["index"].isin(PREDICTIONS)].to_csv(path, sep="\t", index=False)
    assert main(["eval", "score", "--predictions", str(path), "--benchmark", str(mmbench_tsv), "--out", str(tmp_path / "a")]) == 0
    strict = capsys.readouterr().out
    assert "50.00% of 4 questions" in strict and "1 missing (strict: counted wrong)" in strict
    assert "missing indices: 3000030" in strict
    assert main(["eval", "score", "--predictions", str(path), "--benchmark", str(mmbench_tsv), "--out", str(tmp_path / "b"),
                 "--missing", "vlmevalkit"]) == 0
    assert "75.00% of 4 questions" in capsys.readouterr().out
    written = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert written["missing_policy"] == "vlmevalkit" and written["mode_reason"].startswith("the name 'MMBench_DEV_EN'")


def test_rotation_group_with_three_of_four_rows_is_named(tsv_writer, tmp_path):
    frame = mmbench_frame()
    broken = tsv_writer(frame[frame["index"] != 2000007], "MMBench_DEV_EN.tsv")
    with pytest.raises(BenchmarkError, match=r"row 3 \(index 7\), column 'index': question 7 has 3 of its 4 rotations"):
        score(load_benchmark(broken), {}, "circular")
    assert main(["eval", "check", str(broken)]) == 2
    legacy = frame[frame["index"] != 3000007].copy()  # VLMEvalKit's legacy files keep a last "none of them" option
    for k, index in enumerate([7, 1000007, 2000007]):
        texts = ["Swimming", "Running", "Fishing"]
        texts = texts[-k:] + texts[:-k] if k else texts
        legacy.loc[legacy["index"] == index, ["A", "B", "C", "D"]] = [*texts, "None of them"]
        legacy.loc[legacy["index"] == index, "answer"] = "ABC"[texts.index("Fishing")]
    bench = load_benchmark(tsv_writer(legacy, "MMBench_legacy.tsv"))
    assert score(bench, {r.index: r.answer for r in bench.rows}, "circular").summary()["overall"] == 1.0


def test_duplicate_prediction_index_is_named(mmbench_tsv, tmp_path, capsys):
    path = tmp_path / "preds.tsv"
    pd.DataFrame({"index": [241, 7, 241], "prediction": ["B", "C", "A"]}).to_csv(path, sep="\t", index=False)
    assert main(["eval", "score", "--predictions", str(path), "--benchmark", str(mmbench_tsv), "--out", str(tmp_path / "o")]) == 2
    assert "preds.tsv, row 3 (index 241), column 'index': index 241 has a second prediction" in capsys.readouterr().err
