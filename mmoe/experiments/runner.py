"""Run one study: per seed, generate its data, train every arm, score the held-out set, analyse the routing.

Layout of ``out``::

    seed{S}/data/{train,test}-prepared   prepared sets (one source per task family), tokenizer/
                                         (base-prepared: the base model's families, when they are fewer)
    seed{S}/base/                        the base model's run, when the study has one (every arm starts from it)
    seed{S}/{arm}/                       the training run (metrics.jsonl, model/), heldout.json,
                                         analysis/ (``mmoe analyze`` on the held-out set, when the study asks)
    results.json, results.md             every seed's numbers and the table (mean ± std over seeds)
    curves.png                           training (and held-out, with eval_every) loss by step per arm over seeds
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from mmoe.experiments.config import StudyConfig
from mmoe.experiments.table import markdown, summarize_runs

TEST_SEED_OFFSET = 1_000_003  # the held-out stream, as in mmoe demo
FAMILY_SEED_STRIDE = 7919  # each family draws its own scenes


@dataclass(frozen=True)
class SeedData:
    train: Path
    test: Path
    tokenizer: Path
    vocab: int
    base: Path | None  # the base model's training records, when the study has a base model


def _data(study: StudyConfig, size: str, seed: int, out: Path) -> SeedData:
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
    base = None
    if study.base is not None:
        families = study.base.families or list(study.families)
        base = train if set(families) == set(study.families) else prepare_llava({f: raw["train"][f] for f in families}, tokenizer, out / "base-prepared")
    return SeedData(train=train, test=test, tokenizer=tokenizer, vocab=vocab, base=base)


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


def moe_flops_measured(costs: list, summary: dict) -> float:
    """``moe_flops_per_token`` with the null-expert picks the held-out tokens actually made: a layer with
    null experts costs its FLOPs without them less the saving its router measured (``expert_flops_saved``,
    mean per token over the ``mmoe analyze`` pass); layers without null experts cost what they dispatch."""
    from mmoe.analysis.collect import ALL

    modules = summary["categories"][ALL]["modules"]
    measured = []
    for cost in costs:
        flops = cost.flops
        if cost.null_experts:
            flops = cost.flops + cost.flops_saved - modules[cost.name]["expert_flops_saved"]
        measured.append(replace(cost, computed_params=flops / 2))
    return moe_flops_per_token(measured)


def _train(study: StudyConfig, arm: str | None, *, data: SeedData, records: Path, steps: int, batch: int, eval_every: int, seed: int, out: Path,
           base: Path | None):
    """Train one recipe (an arm, or the base model for ``arm=None``) on ``records``, from ``base``'s groups if given."""
    from mmoe.config import load_config
    from mmoe.train.loop import train

    overrides = [*study.overrides, f"model.tokenizer.name={data.tokenizer}", f"model.llm.config.vocab_size={data.vocab}",
                 f"data.train=[{records}]", f"train.output_dir={out}", f"train.seed={seed}", f"model.seed={seed}",
                 f"train.max_steps={steps}", f"train.micro_batch_size={batch}"]
    if eval_every:
        overrides += [f"data.eval=[{data.test}]", f"train.eval_every={eval_every}"]
    if base is not None:
        overrides += [f"train.init_from={base}", f"train.init_groups=[{','.join(study.base.load)}]"]
    return train(load_config(study.recipe(arm), overrides))


def _arm(study: StudyConfig, arm: str, size: str, seed: int, data: SeedData, base: Path | None, out: Path) -> dict[str, float]:
    from mmoe.analysis.collect import collect_prepared
    from mmoe.analysis.report import summarize, write_report
    from mmoe.experiments.heldout import score_prepared
    from mmoe.model import load_model
    from mmoe.moe.cost import moe_costs

    sz = study.sizes[size]
    began = time.perf_counter()
    result = _train(study, arm, data=data, records=data.train, steps=sz.steps, batch=sz.micro_batch_size, eval_every=sz.eval_every,
                    seed=seed, out=out, base=base)
    model = load_model(result.model_dir).eval()
    scores = score_prepared(model, data.test)
    (out / "heldout.json").write_text(json.dumps(scores, indent=2, ensure_ascii=False))
    row = {"exact": scores["overall"]["all"]["exact"]}
    row |= {f"exact/{key}": v["exact"] for key, v in scores[study.group_by].items()}
    row |= {"loss": scores["overall"]["all"]["loss"]}
    row |= {f"loss/{key}": v["loss"] for key, v in scores[study.group_by].items()}
    costs = moe_costs(model)
    row |= {"train_loss": result.loss, "moe_flops_per_token": moe_flops_per_token(costs)}
    if study.analyze:
        summary = summarize(collect_prepared(model, data.test), model=str(result.model_dir), data=str(data.test), kind="prepared")
        write_report(summary, out / "analysis")
        row["router_separation"] = separation(summary, study)
        row["moe_flops_measured"] = moe_flops_measured(costs, summary)
    row["seconds"] = time.perf_counter() - began
    return row


def run_study(study: StudyConfig, *, size: str, seeds: list[int], out: str | Path) -> dict:
    """Run every arm for every seed; write ``results.json``, ``results.md`` and ``curves.png`` under ``out``; return the results."""
    from mmoe.analysis.curves import read_metrics, write_comparison
    from mmoe.experiments.kernels import describe_cpu_kernels

    out = Path(out)
    runs: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in study.arms}
    for seed in seeds:
        data = _data(study, size, seed, out / f"seed{seed}" / "data")
        base = None
        if data.base is not None:
            sz = study.sizes[size]
            base = _train(study, None, data=data, records=data.base, steps=sz.base_steps, batch=sz.micro_batch_size, eval_every=0,
                          seed=seed, out=out / f"seed{seed}" / "base", base=None).model_dir
        for arm in study.arms:
            runs[arm][seed] = _arm(study, arm, size, seed, data, base, out / f"seed{seed}" / arm)
    timing = {arm: {s: row.pop("seconds") for s, row in by_seed.items()} for arm, by_seed in runs.items()}
    summary = summarize_runs(runs)
    results = {"study": study.name, "question": study.question, "claim": study.claim, "size": size, "seeds": seeds,
               "sizes": study.sizes[size].model_dump(), "runs": {a: {str(s): r for s, r in by_seed.items()} for a, by_seed in runs.items()},
               "summary": summary, "seconds": timing, "cpu_kernels": describe_cpu_kernels()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    kernels = "portable" if results["cpu_kernels"]["portable"] else "native (this machine's)"
    (out / "results.md").write_text(f"# {study.name} ({size})\n\n{study.question}\n\n{markdown(summary, seeds)}\n\nCPU kernels: {kernels}.\n")
    write_comparison({arm: [read_metrics(out / f"seed{s}" / arm) for s in seeds] for arm in study.arms}, out / "curves.png",
                     title=f"{study.name} ({size}), seeds {', '.join(map(str, seeds))}")
    return results
