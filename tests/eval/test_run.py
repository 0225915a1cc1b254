"""End to end with a tiny random model: generation, caches and resume, likelihood, CLI run and score."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mmoe.cli import main
from mmoe.eval import BenchmarkError, evaluate, load_benchmark, score_predictions
from mmoe.eval.circular import prepare

from tests.eval.mmbench_files import mmbench_frame, write_tsv


@pytest.fixture
def files(tmp_path):
    return [
        write_tsv(mmbench_frame(), tmp_path / "MMBench_DEV_EN.tsv"),
        write_tsv(mmbench_frame(rotations=False).drop(columns=["L2-category"]), tmp_path / "mmmb_ru.tsv"),
        write_tsv(mmbench_frame(answers=False, split="test"), tmp_path / "MMBench_TEST_CN.tsv"),
    ]


def test_evaluate_writes_predictions_and_reports(tiny_model_dir, files, tmp_path):
    out = tmp_path / "out"
    summaries = evaluate(tiny_model_dir, files, out, batch_size=4, max_new_tokens=4, likelihood=True, progress=False)
    en, ru, test = summaries["MMBench_DEV_EN"], summaries["mmmb_ru"], summaries["MMBench_TEST_CN"]
    assert en["mode"] == "circular" and en["n_questions"] == 4 and en["n_rows"] == 13 and en["n_missing"] == 0
    assert ru["mode"] == "vanilla" and ru["n_questions"] == 4 and ru["language"] == "ru"
    assert test["scored"] is False and test["n_rows"] == 13
    assert 0.0 <= en["likelihood"]["overall"] <= 1.0
    predictions = pd.read_csv(out / "MMBench_DEV_EN" / "predictions.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(predictions.columns) == [c for c in mmbench_frame().columns if c != "image"] + ["prediction"]
    assert len(predictions) == 13
    likelihood = pd.read_csv(out / "mmmb_ru" / "predictions_likelihood.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert set(likelihood["prediction"]) <= set("ABCD") and "loglik_A" in likelihood.columns
    assert (out / "MMBench_TEST_CN" / "predictions.tsv").is_file()
    assert not (out / "MMBench_TEST_CN" / "summary.json").exists()
    combined = json.loads((out / "summary.json").read_text())
    assert set(combined) == {"MMBench_DEV_EN", "mmmb_ru", "MMBench_TEST_CN"}
    assert "| en | ru |" in (out / "results.md").read_text() and (out / "accuracy.png").is_file()
    assert list(pd.read_csv(out / "all_acc.csv").columns[:3]) == ["DATASET", "split", "Overall"]
    # rescoring the written predictions file reproduces the run's score
    (again,) = score_predictions(out / "MMBench_DEV_EN" / "predictions.tsv", tmp_path / "rescored", [files[0]]).values()
    assert again["overall"] == en["overall"] and again["n_unmatched"] == en["n_unmatched"]


def test_interrupted_run_resumes_from_the_cache(tiny_model_dir, tmp_path):
    bench = write_tsv(mmbench_frame(rotations=False), tmp_path / "MMBench_DEV_EN.tsv")  # rotations are generated
    out = tmp_path / "out"
    first = evaluate(tiny_model_dir, [bench], out, batch_size=4, max_new_tokens=3, progress=False)
    assert first["MMBench_DEV_EN"]["n_rows"] == 13
    cache = out / "MMBench_DEV_EN" / "cache" / "generate.jsonl"
    lines = cache.read_text().splitlines()
    kept = [json.loads(line) for line in lines[1:4]]
    for item in kept:  # mark the rows that "finished" before the interruption
        item["value"] = "B"
    cache.write_text("\n".join([lines[0], *map(json.dumps, kept), '{"index": 7, "val']) + "\n")
    evaluate(tiny_model_dir, [bench], out, batch_size=4, max_new_tokens=3, progress=False)
    predictions = pd.read_csv(out / "MMBench_DEV_EN" / "predictions.tsv", sep="\t", dtype=str, keep_default_na=False)
    by_index = dict(zip(predictions["index"].astype(int), predictions["prediction"]))
    assert all(by_index[item["index"]] == "B" for item in kept) and len(by_index) == 13
    assert "g_index" in predictions.columns
    with pytest.raises(BenchmarkError, match="other settings .*max_new_tokens"):
        evaluate(tiny_model_dir, [bench], out, batch_size=4, max_new_tokens=5, progress=False)
    evaluate(tiny_model_dir, [bench], out, batch_size=4, max_new_tokens=5, progress=False, fresh=True, limit=1)


def test_cli_run_score_and_check(tiny_model_dir, files, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["eval", "run", "--model", str(tiny_model_dir), "--benchmark", str(files[1]), "--out", str(out),
                 "--batch-size", "2", "--max-new-tokens", "3", "--style", "llava", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "mmmb_ru [ru]: " in printed and "  mode vanilla (the name 'mmmb_ru' is not" in printed
    assert "rows: 4 read, 4 scored, 4 predicted, 0 missing (strict: counted wrong)" in printed
    assert "prompt style llava; extraction rules mmoe-2" in printed
    code = main(["eval", "score", "--predictions", str(out / "mmmb_ru" / "predictions.tsv"), "--benchmark", str(files[1]),
                 "--out", str(tmp_path / "scored")])
    assert code == 0 and json.loads((tmp_path / "scored" / "summary.json").read_text())["n_questions"] == 4
    assert main(["eval", "check", str(files[0]), str(files[2])]) == 0
    text = capsys.readouterr().out
    assert "13 rows, 4 questions, language en, circular scoring (the name 'MMBench_DEV_EN' contains 'mmbench'" in text
    assert "no answers (test split)" in text and "4 images decoded" in text
    bad = mmbench_frame()
    bad.loc[0, "image"] = "%%%" * 30
    assert main(["eval", "check", str(write_tsv(bad, tmp_path / "bad.tsv"))]) == 2
    assert "row 1 (index 241), column 'image': bad base64" in capsys.readouterr().err


def test_cli_recipe(tiny_model_dir, tmp_path, capsys):
    write_tsv(mmbench_frame(rotations=False), tmp_path / "mmmb_en.tsv")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: t\nbenchmarks: [mmmb_en.tsv]\nstyle: lmms\nmax_new_tokens: 2\nbatch_size: 4\n")
    code = main(["eval", "run", "--model", str(tiny_model_dir), "--recipe", str(recipe), "--data-root", str(tmp_path),
                 "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 0 and json.loads((tmp_path / "o" / "mmmb_en" / "summary.json").read_text())["style"] == "lmms"
    recipe.write_text("name: t\nbenchmarks: [mmmb_en.tsv]\nstyles: lmms\n")
    assert main(["eval", "run", "--model", str(tiny_model_dir), "--recipe", str(recipe), "--out", str(tmp_path / "o")]) == 2
    assert "unknown key 'styles'" in capsys.readouterr().err


def test_shipped_recipes_validate_and_name_their_downloads():
    from pathlib import Path

    from mmoe.eval.recipe import load_recipe

    recipes = sorted((Path(__file__).resolve().parents[2] / "eval").glob("*.yaml"))
    assert {r.stem for r in recipes} >= {"mmmb", "mtl_mmbench", "mmbench_en_cn"}
    for path in recipes:
        recipe = load_recipe(path)
        assert all(name in recipe.downloads for name in recipe.benchmarks), path


def test_run_and_score_give_the_same_number(tiny_model_dir, tmp_path, capsys):
    """On an MMBench file without copies, eval run predicts generated rotations; eval score of its
    predictions (with or without the benchmark) gives the run's number, mode and reason."""
    bench = write_tsv(mmbench_frame(rotations=False), tmp_path / "MMBench_DEV_EN.tsv")
    out = tmp_path / "out"
    evaluate(tiny_model_dir, [bench], out, batch_size=4, max_new_tokens=2, progress=False)
    cache = out / "MMBench_DEV_EN" / "cache" / "generate.jsonl"
    lines = cache.read_text().splitlines()
    answers = {row.index: row.answer for row in prepare(load_benchmark(bench))[0].rows}
    items = [json.loads(line) for line in lines[1:]]
    for n, item in enumerate(items):  # a model right on all rows but two
        item["value"] = answers[item["index"]] if n not in (2, 5) else "Z"
    cache.write_text("\n".join([lines[0], *map(json.dumps, items)]) + "\n")
    run = evaluate(tiny_model_dir, [bench], out, batch_size=4, max_new_tokens=2, progress=False)["MMBench_DEV_EN"]
    assert run["mode"] == "circular" and run["n_rows"] == 13 and run["n_rows_read"] == 4 and 0 < run["overall"] < 1
    assert run["mode_reason"].endswith("rotations generated and predicted")
    predictions = out / "MMBench_DEV_EN" / "predictions.tsv"
    for benchmarks in ([], [bench]):
        (again,) = score_predictions(predictions, tmp_path / f"s{len(benchmarks)}", benchmarks).values()
        assert (again["overall"], again["mode"], again["n_rows"], again["n_missing"]) == (run["overall"], "circular", 13, 0)
        assert again["style"] == "vlmevalkit" and again["mode_reason"].startswith("recorded by eval run")
    assert main(["eval", "score", "--predictions", str(predictions), "--out", str(tmp_path / "cli")]) == 0
    assert f"{100 * run['overall']:.2f}% of 4 questions" in capsys.readouterr().out


def test_check_decodes_every_image(tmp_path, capsys):
    """A truncated PNG passes a header check but fails when decoded: check finds it, naming row and column."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 80).convert("RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    frame = mmbench_frame()
    frame.loc[0, "image"] = base64.b64encode(data[: len(data) // 2]).decode()
    assert main(["eval", "check", str(write_tsv(frame, tmp_path / "MMBench_DEV_EN.tsv"))]) == 2
    assert "row 1 (index 241), column 'image': image cannot be decoded" in capsys.readouterr().err


def test_check_decodes_each_distinct_image_once(tmp_path, capsys, monkeypatch):
    """13 rows share 4 images (pointer cells): eval check decodes 4 images, once each, in full."""
    import mmoe.images

    decoded = []
    real_load = mmoe.images._load

    def spy(image, name):
        decoded.append(image.size)
        return real_load(image, name)

    monkeypatch.setattr(mmoe.images, "_load", spy)
    assert main(["eval", "check", str(write_tsv(mmbench_frame(), tmp_path / "MMBench_DEV_EN.tsv"))]) == 0
    assert "13 rows, 4 questions" in capsys.readouterr().out
    assert decoded == [(24, 16)] * 4
