"""``mmoe demo``: the whole pipeline on the embedded default, on CPU, in minutes.

Synthetic multilingual shapes data -> ``mmoe prep`` pipeline -> stage 1 (MLP projector, Parrot MoE
bypassed) -> stage 2 (Parrot MoE projector + projector + LLM) -> held-out synthetic MMMB in six
languages -> accuracy table, predictions and ``report.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from mmoe.languages import mmmb_file_code

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "configs" / "demo"
LANGUAGES = ("en", "zh", "pt", "ar", "tr", "ru")


def _prepare_data(out: Path, train_records: int, seed: int) -> Path:
    from mmoe.data.config import PrepConfig
    from mmoe.data.prep import prepare

    prep = PrepConfig.model_validate({
        "sources": [{"type": "synthetic", "n": train_records, "seed": seed, "path": str(out / "raw")}],
        "tokenizer": {"name": "byte", "chat_template": "chatml", "tokens_per_image": 17},
        "langid": {"enabled": False},
    })
    prepare(prep, out / "prepared", progress=False)
    return out / "prepared"


def _train(recipe: Path, overrides: list[str]):
    from mmoe.config import load_config
    from mmoe.train.loop import train

    return train(load_config(recipe, overrides))


def run_demo(out: str | Path, train_records: int = 6000, test_per_language: int = 50, seed: int = 0,
             stage1_steps: int | None = None, stage2_steps: int | None = None) -> dict:
    """Run every step; returns the report written to ``out/report.json``."""
    from mmoe.data.synthetic import generate_benchmarks
    from mmoe.eval import evaluate
    from mmoe.model import load_model

    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    prepared = _prepare_data(out / "data", train_records, seed)
    benchmarks = [p for p in generate_benchmarks(out / "benchmarks", test_per_language, seed=seed + 1_000_003)
                  if p.name.startswith("mmmb_")]
    common = [f"data.train=[{prepared}]", f"train.seed={seed}"]
    stage1 = _train(RECIPES / "stage1.yaml", common + [f"train.output_dir={out / 'stage1'}"]
                    + ([f"train.max_steps={stage1_steps}"] if stage1_steps else []))
    stage2 = _train(RECIPES / "stage2.yaml", common + [f"train.output_dir={out / 'stage2'}", f"train.init_from={stage1.model_dir}"]
                    + ([f"train.max_steps={stage2_steps}"] if stage2_steps else []))
    model = load_model(stage2.model_dir)
    summaries = evaluate(model, benchmarks, out / "eval", 32, 4, style="llava", progress=False)
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
