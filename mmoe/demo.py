"""``mmoe demo``: the whole pipeline on the embedded default, on CPU, in minutes.

Synthetic multilingual shapes data -> ``mmoe prep`` pipeline -> stage 1 (alignment on short answers:
MLP projector and the from-scratch LLM, Parrot MoE bypassed) -> stage 2 (instruction tuning with
multiple-choice questions: Parrot MoE projector + projector + LLM) -> held-out synthetic MMMB in six
languages -> accuracy table, predictions and ``report.json``.

The multiple-choice questions use VLMEvalKit's default prompt, and the instruction data answers them
with the option's text, which VLMEvalKit's rules map to the option. The 3-layer LLM trained from
scratch learns to recognise the attributes within minutes on a CPU, but not to point at an option
letter (measured in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from mmoe.configs import DEMO_RECIPES as RECIPES
from mmoe.errors import MMoEError
from mmoe.languages import mmmb_file_code

LANGUAGES = ("en", "zh", "pt", "ar", "tr", "ru")
TOKENIZER_VOCAB = 1024
EVAL_STYLE = "vlmevalkit"
# Stage 1 aligns on short answers, up to four questions per image; stage 2 mixes in multiple choice.
ALIGN_DATA = {"mcq_fraction": 0.0, "extra_questions": 3, "extra_question_fraction": 0.8}
INSTRUCT_DATA = {"mcq_fraction": 0.7, "extra_questions": 1, "extra_question_fraction": 0.5}
MARKER = ".mmoe-demo"
# What a demo run writes under --out (runs made before MARKER existed hold only these).
DEMO_ENTRIES = {MARKER, "data", "tokenizer", "benchmarks", "stage1", "stage2", "eval", "predictions", "report.json"}


def train_tokenizer(train_jsons: list[Path], out: Path) -> tuple[Path, int]:
    """Train the demo's BPE tokenizer on the training conversations; returns (directory, vocab size)."""
    from mmoe.tokenization.tokenizer import train_bpe_tokenizer

    records = [r for path in train_jsons for r in json.loads(path.read_text(encoding="utf-8"))]
    tokenizer = train_bpe_tokenizer((turn["value"] for r in records for turn in r["conversations"]), TOKENIZER_VOCAB)
    tokenizer.save_pretrained(out)
    return out, len(tokenizer)


def prepare_llava(train_jsons: dict[str, Path], tokenizer: Path, out: Path) -> Path:
    """The real prep pipeline over generated LLaVA-style files, one source per name (a record's
    ``source``); languages are declared per record."""
    from mmoe.data.config import PrepConfig
    from mmoe.data.prep import prepare

    prep = PrepConfig.model_validate({
        "sources": [{"type": "llava", "name": name, "path": str(path)} for name, path in train_jsons.items()],
        "tokenizer": {"name": str(tokenizer), "chat_template": "auto", "tokens_per_image": 17},
        "langid": {"enabled": False},
    })
    prepare(prep, out, progress=False)
    return out


class DemoOutputError(MMoEError):
    """``--out`` names a directory that holds files the demo did not write."""


def _clear_output(out: Path) -> None:
    """Replace an earlier demo run (marked by ``MARKER``, or holding only the demo's own entries); refuse
    any other non-empty directory, so a mistyped ``--out`` deletes nothing."""
    if out.exists() and not out.is_dir():
        raise DemoOutputError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        foreign = sorted(p.name for p in out.iterdir() if p.name not in DEMO_ENTRIES)
        if not (out / MARKER).is_file() and foreign:
            raise DemoOutputError(
                f"--out {out} is not empty and is not an earlier demo run (it holds {', '.join(foreign[:5])}); choose another directory"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by mmoe demo; the next demo run with this --out replaces this directory\n")


def _train(recipe: Path, overrides: list[str]):
    from mmoe.config import load_config
    from mmoe.train.loop import train

    return train(load_config(recipe, overrides))


def run_demo(out: str | Path, train_records: int = 20000, test_per_language: int = 50, seed: int = 0,
             stage1_steps: int | None = None, stage2_steps: int | None = None) -> dict:
    """Run every step; returns the report written to ``out/report.json``.

    ``train_records`` is the size of each stage's training set (the two sets draw different scenes).
    """
    from mmoe.data.synthetic import generate_benchmarks, generate_training_set
    from mmoe.data.synthetic.generate import MCQFormat
    from mmoe.eval import evaluate
    from mmoe.model import load_model

    out = Path(out)
    _clear_output(out)
    began = time.perf_counter()
    align = generate_training_set(out / "data" / "align", train_records, seed=seed, **ALIGN_DATA)
    instruct = generate_training_set(out / "data" / "instruct", train_records, seed=seed + 1,
                                     mcq_format=MCQFormat(EVAL_STYLE, "text"), **INSTRUCT_DATA)
    tokenizer, vocab = train_tokenizer([align, instruct], out / "tokenizer")
    prepared = {name: prepare_llava({"synthetic": raw}, tokenizer, out / "data" / f"{name}-prepared")
                for name, raw in (("align", align), ("instruct", instruct))}
    benchmarks = [p for p in generate_benchmarks(out / "benchmarks", test_per_language, seed=seed + 1_000_003)
                  if p.name.startswith("mmmb_")]
    common = [f"train.seed={seed}", f"model.tokenizer.name={tokenizer}", f"model.llm.config.vocab_size={vocab}"]
    stage1 = _train(RECIPES / "stage1.yaml", common + [f"data.train=[{prepared['align']}]", f"train.output_dir={out / 'stage1'}"]
                    + ([f"train.max_steps={stage1_steps}"] if stage1_steps else []))
    stage2 = _train(RECIPES / "stage2.yaml", common + [f"data.train=[{prepared['instruct']}]", f"train.output_dir={out / 'stage2'}",
                                                       f"train.init_from={stage1.model_dir}"]
                    + ([f"train.max_steps={stage2_steps}"] if stage2_steps else []))
    model = load_model(stage2.model_dir)
    summaries = evaluate(model, benchmarks, out / "eval", 32, 16, style=EVAL_STYLE, progress=False)
    predictions = out / "predictions"
    predictions.mkdir(parents=True, exist_ok=True)
    accuracy: dict[str, float] = {}
    correct = total = 0
    for summary in summaries.values():
        code = mmmb_file_code(summary["language"])
        shutil.copy(summary["predictions"], predictions / f"mmmb_{code}.tsv")
        accuracy[summary["language"]] = summary["overall"]
        correct += summary["n_correct"]
        total += summary["n_questions"]
    report = {
        "accuracy": {"overall": correct / total, **{lang: accuracy[lang] for lang in LANGUAGES if lang in accuracy}},
        "seconds": round(time.perf_counter() - began, 1),
        "model": str(stage2.model_dir),
        "losses": {"stage1": stage1.loss, "stage2": stage2.loss},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def format_table(report: dict) -> str:
    acc = report["accuracy"]
    header = "| " + " | ".join(["overall", *[mmmb_file_code(l) for l in LANGUAGES]]) + " |"
    rule = "|" + "---|" * (len(LANGUAGES) + 1)
    row = "| " + " | ".join(f"{acc[k]:.3f}" for k in ["overall", *LANGUAGES]) + " |"
    return "\n".join([header, rule, row, f"\n{report['seconds']:.0f} s; model: {report['model']}"])
