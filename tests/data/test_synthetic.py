"""The synthetic multilingual generator: determinism, layouts, disjoint train/test images, CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pandas as pd
import pytest

from mmoe.cli import main
from mmoe.data.synthetic import generate_benchmarks, generate_training_set
from mmoe.data.synthetic.generate import CIRCULAR_OFFSET, MCQFormat, _benchmark_items, _turns
from mmoe.eval import load_benchmark
from mmoe.eval.prompts import user_message
from mmoe.languages import MMMB_LANGUAGES, mmmb_file_code

MMMB_COLUMNS = ["index", "image", "question", "hint", "A", "B", "C", "D", "answer", "category", "split"]


def test_training_set_is_deterministic_and_multilingual(tmp_path):
    a = generate_training_set(tmp_path / "a", 24, seed=1)
    b = generate_training_set(tmp_path / "b", 24, seed=1)
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a/images/000/000005.png").read_bytes() == (tmp_path / "b/images/000/000005.png").read_bytes()
    records = json.loads(a.read_text(encoding="utf-8"))
    assert {r["language"] for r in records} == {"en", "zh", "pt", "ar", "tr", "ru"}
    assert all(r["conversations"][0]["value"].startswith("<image>\n") for r in records)
    letters = [t["value"] for r in records for t in r["conversations"][1::2] if len(t["value"]) == 1 and t["value"] in "ABCD"]
    assert letters and len(letters) < sum(len(r["conversations"]) // 2 for r in records)  # both answer styles


def test_benchmarks_follow_vlmevalkit_layout(tmp_path):
    paths = generate_benchmarks(tmp_path, n_per_language=12, seed=0)
    assert sorted(p.name for p in paths) == sorted(
        [f"mmmb_{c}.tsv" for c in ("en", "cn", "pt", "ar", "tr", "ru")] + [f"mmbench_dev_{c}.tsv" for c in ("en", "cn", "pt", "ar", "tr", "ru")]
    )
    en = pd.read_csv(tmp_path / "mmmb_en.tsv", sep="\t")
    cn = pd.read_csv(tmp_path / "mmmb_cn.tsv", sep="\t")
    assert list(en.columns) == MMMB_COLUMNS and len(en) == 12
    assert (en["image"] == cn["image"]).all() and (en["answer"] == cn["answer"]).all()
    assert set(en["category"]) == {"color", "shape", "count", "position"}
    mmb = pd.read_csv(tmp_path / "mmbench_dev_tr.tsv", sep="\t")
    assert list(mmb.columns) == MMMB_COLUMNS[:-1] + ["l2-category", "split"] and len(mmb) == 48
    for base in range(12):
        group = mmb[mmb["index"] % CIRCULAR_OFFSET == base].sort_values("index")
        assert len(group) == 4
        correct = {row[row["answer"]] for _, row in group.iterrows()}
        assert len(correct) == 1  # every rotation points at the same option text
        assert (group["image"].iloc[1:] == str(base)).all()


@pytest.mark.parametrize("style", ["llava", "vlmevalkit"])
@pytest.mark.parametrize("language", MMMB_LANGUAGES)
def test_training_mcq_prompt_is_the_eval_prompt(tmp_path, language, style):
    """Training records and evaluation build the multiple-choice prompt with the same code: byte for byte equal."""
    generate_benchmarks(tmp_path, n_per_language=8, seed=3, languages=[language])
    bench = load_benchmark(tmp_path / f"mmmb_{mmmb_file_code(language)}.tsv")
    items = _benchmark_items(8, random.Random("mmoe-synthetic-mmmb-3"))  # the questions behind the file's rows
    assert bench.language == language and len(bench.rows) == len(items) == 8
    for row, (_, question, _) in zip(bench.rows, items):
        user, reply = _turns(question, language, MCQFormat(style, "text"), first=True)
        assert user["value"].encode() == user_message(row, style).encode()
        assert reply["value"] == row.options[row.answer]  # a text reply is the right option's text


def test_mcq_format_rejects_unknown_style_or_answer():
    with pytest.raises(ValueError, match="letter, text"):
        MCQFormat(answer="number")
    with pytest.raises(ValueError, match="style must be one of .*vlmevalkit"):
        MCQFormat(style="qwen")


def test_train_and_test_images_are_disjoint(tmp_path):
    generate_training_set(tmp_path / "train", 300, seed=0)
    generate_benchmarks(tmp_path / "bench", 100, seed=0, languages=["en"])
    train = {hashlib.sha1(p.read_bytes()).hexdigest() for p in (tmp_path / "train/images").rglob("*.png")}
    test = {
        hashlib.sha1(base64.b64decode(cell)).hexdigest()
        for name in ("mmmb_en.tsv", "mmbench_dev_en.tsv")
        for cell in pd.read_csv(tmp_path / "bench" / name, sep="\t")["image"] if len(str(cell)) > 64
    }
    assert len(train) == 300 and not train & test


def test_cli_prep_synthetic(tmp_path, capsys):
    assert main(["prep", "--source", "synthetic", "--n", "30", "--out", str(tmp_path / "out"), "--no-progress", "tokenizer.tokens_per_image=16"]) == 0
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["kept"] == 30 and manifest["rejected"] == 0
    assert '"kept": 30' in capsys.readouterr().out
