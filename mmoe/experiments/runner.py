"""Run one study: per seed, generate its data, train every arm, score the held-out set, analyse the routing.

Layout of ``out``::

    seed{S}/data/{train,test}-prepared   prepared sets (one source per task family), tokenizer/
    seed{S}/{arm}/                       the training run (metrics.jsonl, model/), heldout.json,
                                         analysis/ (``mmoe analyze`` on the held-out set, when the study asks)
    results.json, results.md             every seed's numbers and the table (mean ± std over seeds)
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from mmoe.experiments.config import StudyConfig
from mmoe.experiments.table import markdown, summarize_runs

TEST_SEED_OFFSET = 1_000_003  # the held-out stream, as in mmoe demo
FAMILY_SEED_STRIDE = 7919  # each family draws its own scenes


def _data(study: StudyConfig, size: str, seed: int, out: Path) -> tuple[Path, Path, Path, int]:
    """Training and held-out prepared sets for one seed, and the BPE tokenizer trained on the training set."""
    from mmoe.data.synthetic import generate_training_set
    from mmoe.demo import prepare_llava, train_tokenizer

    sz = study.sizes[size]
    raw: dict[str, dict[str, Path]] = {"train": {}, "test": {}}
    for k, (family, cfg) in enumerate(study.families.items()):
        common = {"languages": study.languages, "mcq_fraction": 0.0, "extra_questions": 0, "short_format": cfg.short_format}
        raw["train"][family] = generate_training_set(out / "raw" / "train" / family, sz.train_records, seed=seed + k * FAMILY_SEED_STRIDE,
                                                     language_weights=study.language_weights, **common)
        raw["test"][family] = generate_training_set(out / "raw" / "test" / family, sz.test_records,
                                                    seed=seed + k * FAMILY_SEED_STRIDE + TEST_SEED_OFFSET, **common)
    tokenizer, vocab = train_tokenizer(list(raw["train"].values()), out / "tokenizer")
    train = prepare_llava(raw["train"], tokenizer, out / "train-prepared")
    test = prepare_llava(raw["test"], tokenizer, out / "test-prepared")
    return train, test, tokenizer, vocab


def separation(summary: dict, study: StudyConfig) -> float:
    """How differently the router treats the study's groups: the mean over routed modules and over pairs
    of groups (task families, or languages) of the total-variation distance between their expert shares
    (0: the same experts in the same proportions; 1: disjoint experts)."""
    from mmoe.analysis.report import groups, language_counts, shares, usage_rows

    distances = []
    for group in groups(summary):
        if study.group_by == "source":
            per = {f: usage_rows(summary, group, f) for f in study.families}
            modules = sorted(set.intersection(*(set(rows) for rows in per.values())))
            by_module = [{f: per[f][m] for f in per} for m in modules]
        else:
            modules = list(usage_rows(summary, group))
            by_module = [{lang: shares(c) for lang, c in language_counts(summary, group, [m]).items()} for m in modules]
        for dists in by_module:
            for a, b in itertools.combinations(sorted(dists), 2):
                distances.append(0.5 * sum(abs(x - y) for x, y in zip(dists[a], dists[b])))
    return sum(distances) / len(distances) if distances else 0.0


def moe_flops_per_token(costs: list) -> float:
    """Forward FLOPs per token of the MoE layers. A token reaches one modality group of a layer, so a
    layer counts its costliest group (exact when, as here, the groups are the same size)."""
    per_layer: dict[str, float] = {}
    for cost in costs:
        per_layer[cost.name] = max(per_layer.get(cost.name, 0.0), cost.flops)
    return sum(per_layer.values())


def _arm(study: StudyConfig, arm: str, size: str, seed: int, data: tuple[Path, Path, Path, int], out: Path) -> dict[str, float]:
    from mmoe.analysis.collect import collect_prepared
    from mmoe.analysis.report import summarize, write_report
    from mmoe.config import load_config
    from mmoe.experiments.heldout import score_prepared
    from mmoe.model import load_model
    from mmoe.moe.cost import moe_costs
    from mmoe.train.loop import train

    train_dir, test_dir, tokenizer, vocab = data
    sz = study.sizes[size]
    overrides = [*study.overrides, f"model.tokenizer.name={tokenizer}", f"model.llm.config.vocab_size={vocab}",
                 f"data.train=[{train_dir}]", f"train.output_dir={out}", f"train.seed={seed}", f"model.seed={seed}",
                 f"train.max_steps={sz.steps}", f"train.micro_batch_size={sz.micro_batch_size}"]
    began = time.perf_counter()
    result = train(load_config(study.recipe(arm), overrides))
    model = load_model(result.model_dir).eval()
    scores = score_prepared(model, test_dir)
    (out / "heldout.json").write_text(json.dumps(scores, indent=2, ensure_ascii=False))
    row = {"exact": scores["overall"]["all"]["exact"]}
    row |= {f"exact/{key}": v["exact"] for key, v in scores[study.group_by].items()}
    row |= {"loss": scores["overall"]["all"]["loss"]}
    row |= {f"loss/{key}": v["loss"] for key, v in scores[study.group_by].items()}
    row |= {"train_loss": result.loss, "moe_flops_per_token": moe_flops_per_token(moe_costs(model))}
    if study.analyze:
        summary = summarize(collect_prepared(model, test_dir), model=str(result.model_dir), data=str(test_dir), kind="prepared")
        write_report(summary, out / "analysis")
        row["router_separation"] = separation(summary, study)
    row["seconds"] = time.perf_counter() - began
    return row


def run_study(study: StudyConfig, *, size: str, seeds: list[int], out: str | Path) -> dict:
    """Run every arm for every seed; write ``results.json`` and ``results.md`` under ``out``; return the results."""
    out = Path(out)
    runs: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in study.arms}
    for seed in seeds:
        data = _data(study, size, seed, out / f"seed{seed}" / "data")
        for arm in study.arms:
            runs[arm][seed] = _arm(study, arm, size, seed, data, out / f"seed{seed}" / arm)
    timing = {arm: {s: row.pop("seconds") for s, row in by_seed.items()} for arm, by_seed in runs.items()}
    summary = summarize_runs(runs)
    results = {"study": study.name, "question": study.question, "claim": study.claim, "size": size, "seeds": seeds,
               "sizes": study.sizes[size].model_dump(), "runs": {a: {str(s): r for s, r in by_seed.items()} for a, by_seed in runs.items()},
               "summary": summary, "seconds": timing}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(f"# {study.name} ({size})\n\n{study.question}\n\n{markdown(summary, seeds)}\n")
    return results
