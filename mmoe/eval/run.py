"""Evaluate a model on benchmark files: predictions (cached per row), scores and reports.

Layout of ``out_dir``::

    {name}/predictions.tsv              benchmark columns (no image) + prediction, VLMEvalKit-compatible
    {name}/run.json                     how the predictions were made: benchmark, mode and why, style, model
    {name}/predictions_likelihood.tsv   with likelihood=True: the most likely letter + loglik_{letter}
    {name}/summary.json, {name}_acc.csv, results.md, accuracy.png     (files with answers only)
    {name}/cache/*.jsonl                per-row caches (one per rank under a launcher); a rerun resumes from them
    summary.json, results.md, accuracy.png, all_acc.csv               over all benchmarks

Under ``deepspeed`` or ``torchrun`` each rank predicts every ``world``-th row and rank 0 merges the
ranks' caches, scores and writes every file; the other ranks return ``{}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from mmoe.eval.batching import eval_device, eval_dtype
from mmoe.eval.benchmark import Benchmark
from mmoe.eval.cache import RowCache
from mmoe.eval.circular import prepare
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.generate import generate_predictions
from mmoe.eval.likelihood import choose, likelihood_scores
from mmoe.eval.prompts import STYLES
from mmoe.eval.report import acc_table, write_combined, write_reports
from mmoe.eval.ranks import launched_ranks
from mmoe.eval.score import Judge, score
from mmoe.eval.score_file import RUN_RECORD
from mmoe.eval.sources import open_benchmark
from mmoe.train.distributed import barrier

LIKELIHOOD_KEYS = ("mode", "overall", "by_category", "by_l2_category", "n_questions", "n_correct")


def model_fingerprint(model) -> str:
    """Identifies config and weights, so a cache made by another checkpoint is never reused."""
    digest = hashlib.sha1(json.dumps(model.config.model_dump(mode="json"), sort_keys=True).encode())
    with torch.no_grad():
        total = sum(float(p.detach().float().sum()) for p in model.parameters())
    digest.update(f"{total:.6e}".encode())
    return digest.hexdigest()[:16]


def write_predictions(bench: Benchmark, values: dict[int, str], path: Path, extra: dict[str, dict[int, float]] | None = None) -> None:
    records = []
    for row in bench.rows:
        record = {column: row.cells.get(column, "") for column in bench.columns}
        record["prediction"] = values[row.index]
        for column, per_row in (extra or {}).items():
            record[column] = per_row.get(row.index, "")
        records.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_csv(path, sep="\t", index=False)


def _limit(bench: Benchmark, questions: int | None) -> Benchmark:
    if questions is None:
        return bench
    keep: list[int] = []
    for row in bench.rows:
        if row.group not in keep and len(keep) < questions:
            keep.append(row.group)
    rows = [row for row in bench.rows if row.group in set(keep)]
    return Benchmark(bench.name, bench.source, bench.language, rows, bench.columns, bench.names, bench.has_answers)


def evaluate(
    model,
    benchmarks: Sequence[str | Path | Benchmark],
    out_dir: str | Path,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    *,
    style: str = "vlmevalkit",
    mode: str = "auto",
    language: str | None = None,
    split: str | None = None,
    likelihood: bool = False,
    likelihood_target: str = "letter",
    judge: Judge | None = None,
    missing: str = "strict",
    limit: int | None = None,
    fresh: bool = False,
    progress: bool = True,
    device: str | None = None,
    dtype: str = "auto",
) -> dict[str, dict]:
    """Run ``model`` (an MMoEModel or a saved model directory) on ``benchmarks`` and write ``out_dir``.

    ``device`` defaults to CUDA when present; ``dtype`` ``auto`` is bfloat16 there, float32 on CPU.
    Returns ``{benchmark name: summary}`` (on rank 0; ``{}`` on other ranks); a summary has the score
    keys (``overall``, ``by_category``, ...) for files with answers, and ``predictions`` always.
    """
    from mmoe.model import MMoEProcessor, load_model

    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; choose one of {', '.join(STYLES)}")
    ranks = launched_ranks()
    target = eval_device(device)
    precision = eval_dtype(dtype, target)
    loaded = [b if isinstance(b, Benchmark) else open_benchmark(b, language, split) for b in benchmarks]
    names = [b.name for b in loaded]
    if len(set(names)) != len(names):
        raise BenchmarkError(", ".join(b.source for b in loaded), "two benchmarks share a file name; evaluate them separately")
    if isinstance(model, (str, Path)):
        model = load_model(model)
    model = model.to(device=target, dtype=precision).eval()
    processor = MMoEProcessor.from_model(model)
    fingerprint = model_fingerprint(model)
    out_dir = Path(out_dir)

    summaries: dict[str, dict] = {}
    tables: dict[str, pd.DataFrame] = {}
    for bench in loaded:
        rows_read = len(bench)
        bench, choice = prepare(bench, mode)
        bench = _limit(bench, limit)
        folder = out_dir / bench.name
        settings = {"model": fingerprint, "benchmark": bench.source, "mode": choice.mode, "style": style, "limit": limit,
                    "dtype": str(precision).removeprefix("torch.")}
        gen_settings = {**settings, "max_new_tokens": max_new_tokens}
        gen_cache = RowCache(ranks.cache_path(folder, "generate"), gen_settings, fresh)
        generate_predictions(model, processor, ranks.shard(bench.rows), gen_cache, style, batch_size, max_new_tokens,
                             progress and ranks.main, desc=bench.name)
        ll_settings = {**settings, "target": likelihood_target}
        if likelihood:
            ll_cache = RowCache(ranks.cache_path(folder, "likelihood"), ll_settings, fresh)
            likelihood_scores(model, processor, ranks.shard(bench.rows), ll_cache, style, batch_size, likelihood_target,
                              progress and ranks.main)
        barrier()
        if not ranks.main:
            continue
        predictions = ranks.merged(folder, "generate", gen_settings, bench.rows)
        pred_path = folder / "predictions.tsv"
        write_predictions(bench, predictions, pred_path)
        record = {"predictions": pred_path.name, "benchmark": bench.source, "mode": choice.mode, "mode_reason": choice.reason,
                  "style": style, "model": fingerprint, "dtype": settings["dtype"], "ranks": ranks.world}
        (folder / RUN_RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False))
        extra: dict = {"predictions": str(pred_path), "style": style, "mode_reason": choice.reason,
                       "n_rows_read": rows_read, "ranks": ranks.world}
        if likelihood:
            scores = ranks.merged(folder, "likelihood", ll_settings, bench.rows)
            chosen = {index: choose(s) for index, s in scores.items()}
            letters = sorted({letter for s in scores.values() for letter in s})
            columns = {f"loglik_{L}": {i: s[L] for i, s in scores.items() if L in s} for L in letters}
            write_predictions(bench, chosen, folder / "predictions_likelihood.tsv", columns)
            if bench.has_answers:
                ll_summary = score(bench, chosen, choice.mode).summary()
                extra["likelihood"] = {key: ll_summary[key] for key in LIKELIHOOD_KEYS}
        if not bench.has_answers:
            summaries[bench.name] = {"benchmark": bench.name, "language": bench.language, "scored": False,
                                     "n_rows": len(bench), "mode": choice.mode, **extra}
            continue
        result = score(bench, predictions, choice.mode, judge, missing)
        summaries[bench.name] = write_reports(result, folder, {**extra, "judge": judge is not None})
        tables[bench.name] = acc_table(result)
    if ranks.main:
        write_combined(summaries, out_dir, tables)
    return summaries
