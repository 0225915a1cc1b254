"""``experiments/``: every study file and arm recipe loads; the runner at a micro size writes the table
it promises, with the same numbers for the same seed; the table's noise verdicts and router separation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmoe.config import load_config
from mmoe.config.errors import ConfigError
from mmoe.experiments import load_study, run_study
from mmoe.experiments.config import SizeConfig
from mmoe.experiments.runner import separation
from mmoe.experiments.table import markdown, summarize_runs

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
STUDIES = sorted(EXPERIMENTS.glob("*.yaml"))
RECIPES = sorted((EXPERIMENTS / "recipes").glob("*.yaml"))
MICRO = SizeConfig(train_records=16, test_records=6, steps=2, micro_batch_size=4)


def test_every_study_and_recipe_loads():
    assert {p.stem for p in STUDIES} == {"parrot_vs_mlp", "mole_vs_lora", "moma_vs_mixed"}
    used = set()
    for path in STUDIES:
        study = load_study(path)
        assert len(study.arms) == 2 and set(study.sizes) == {"small", "gpu"}
        for arm in study.arms:
            load_config(study.recipe(arm), study.overrides)
            used.add(study.recipe(arm))
    assert used == {p.resolve() for p in RECIPES}  # no recipe left unused


def test_study_file_errors_name_the_key_or_the_recipe(tmp_path):
    base = (EXPERIMENTS / "mole_vs_lora.yaml").read_text()
    (tmp_path / "typo.yaml").write_text(base.replace("group_by:", "groupby:"))
    with pytest.raises(ConfigError, match="unknown key 'groupby'"):
        load_study(tmp_path / "typo.yaml")
    (tmp_path / "absent.yaml").write_text(base.replace("recipes/mole.yaml", "recipes/nope.yaml"))
    with pytest.raises(ConfigError, match="mole: .*nope.yaml"):
        load_study(tmp_path / "absent.yaml")


def _micro(out: Path) -> dict:
    study = load_study(EXPERIMENTS / "mole_vs_lora.yaml")
    study = study.model_copy(update={"sizes": {**study.sizes, "small": MICRO}})
    return run_study(study, size="small", seeds=[0], out=out)


@pytest.mark.slow
def test_runner_writes_the_table_and_repeats_its_numbers(tmp_path):
    first, second = _micro(tmp_path / "a"), _micro(tmp_path / "b")
    assert first["runs"] == second["runs"]  # same seed, same numbers (CPU)
    assert json.loads((tmp_path / "a/results.json").read_text())["summary"] == first["summary"]
    columns = {"exact", "exact/word", "exact/sentence", "loss", "loss/word", "loss/sentence", "train_loss",
               "moe_flops_per_token", "router_separation"}
    for arm in ("lora", "mole"):
        row = first["runs"][arm]["0"]
        assert set(row) == columns
        assert all(0.0 <= row[c] <= 1.0 for c in ("exact", "exact/word", "exact/sentence", "router_separation"))
        assert row["loss"] > 0 and row["moe_flops_per_token"] > 0
        assert first["summary"][arm]["loss"] == {"mean": row["loss"], "std": 0.0, "min": row["loss"], "max": row["loss"]}
        heldout = json.loads((tmp_path / f"a/seed0/{arm}/heldout.json").read_text())
        assert {k: v["n"] for k, v in heldout["source"].items()} == {"word": 6, "sentence": 6}
        assert (tmp_path / f"a/seed0/{arm}/analysis/analysis.json").is_file()
    assert first["runs"]["lora"]["0"]["router_separation"] == 0.0  # one expert: nothing to separate
    table = (tmp_path / "a/results.md").read_text().splitlines()
    assert sum(line.startswith(("| lora |", "| mole |")) for line in table) == 2


def test_markdown_says_within_noise_only_when_seed_ranges_overlap():
    runs = {"a": {0: {"x": 0.10, "y": 0.5}, 1: {"x": 0.20, "y": 0.6}},
            "b": {0: {"x": 0.15, "y": 0.9}, 1: {"x": 0.30, "y": 0.8}}}
    summary = summarize_runs(runs)
    assert summary["b"]["y"]["min"] == 0.8 and abs(summary["a"]["x"]["std"] - 0.0707107) < 1e-6
    verdict = markdown(summary, [0, 1]).splitlines()[-3]
    assert verdict == "| b vs a (seed ranges) | within noise | b > a |"


def _summary(per_category: dict[str, list[float]]) -> dict:
    categories = {c: {"samples": 1, "modules": {"llm.model.layers.0.mlp": {"tokens_per_expert": counts}}}
                  for c, counts in per_category.items()}
    categories["all"] = {"samples": 2, "modules": {"llm.model.layers.0.mlp": {"tokens_per_expert": [1.0, 1.0, 1.0, 1.0]}}}
    return {"categories": categories}


@pytest.mark.parametrize("word, sentence, expected", [
    ([5.0, 5.0, 0.0, 0.0], [0.0, 0.0, 3.0, 7.0], 1.0),  # disjoint experts
    ([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0], 0.0),  # the same shares
    ([4.0, 0.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0], 0.5),
])
def test_router_separation_is_the_distance_between_the_families_expert_shares(word, sentence, expected):
    study = load_study(EXPERIMENTS / "mole_vs_lora.yaml")
    assert separation(_summary({"word": word, "sentence": sentence}), study) == pytest.approx(expected)
