"""``experiments/``: every study file and arm recipe loads; the runner at a micro size (mole_vs_lora,
adamoe_vs_topk) writes the table and the curves it promises, with the same numbers for the same seed, its
arms starting from the study's base model; the table's noise verdicts, router separation, measured FLOPs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmoe.analysis.curves import comparison_figure
from mmoe.config import load_config
from mmoe.config.errors import ConfigError
from mmoe.experiments import load_study, run_study
from mmoe.experiments.config import SizeConfig
from mmoe.experiments.kernels import pin_portable_kernels
from mmoe.experiments.runner import moe_flops_measured, separation
from mmoe.model import load_model
from mmoe.model.parts import parameter_groups
from mmoe.moe.cost import LayerCost
from mmoe.experiments.table import markdown, summarize_runs
from tests.conftest import child_env

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
STUDIES = sorted(EXPERIMENTS.glob("*.yaml"))
RECIPES = sorted((EXPERIMENTS / "recipes").glob("*.yaml"))
MICRO = SizeConfig(train_records=16, test_records=6, steps=2, micro_batch_size=4, base_steps=2, eval_every=1)


def test_every_study_and_recipe_loads():
    assert {p.stem for p in STUDIES} == {"parrot_vs_mlp", "mole_vs_lora", "moma_vs_mixed", "adamoe_vs_topk", "dynmole_vs_topk", "gwmoe_vs_topk"}
    used = set()
    for path in STUDIES:
        study = load_study(path)
        assert len(study.arms) == 2 and set(study.sizes) == {"small", "gpu"}
        for arm in [*study.arms, *([None] if study.base else [])]:
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
    (tmp_path / "nobase.yaml").write_text(base.replace(", base_steps: 150", ""))
    with pytest.raises(ConfigError, match="base_steps"):
        load_study(tmp_path / "nobase.yaml")
    (tmp_path / "family.yaml").write_text(base.replace("families: [word]}", "families: [words]}"))
    with pytest.raises(ConfigError, match=r"base.families \['words'\]"):
        load_study(tmp_path / "family.yaml")
    (tmp_path / "basefile.yaml").write_text(base.replace("recipes/mole_base.yaml", "recipes/nobase.yaml"))
    with pytest.raises(ConfigError, match="base: .*nobase.yaml"):
        load_study(tmp_path / "basefile.yaml")


def _micro(out: Path) -> dict:
    study = load_study(EXPERIMENTS / "mole_vs_lora.yaml")
    study = study.model_copy(update={"sizes": {**study.sizes, "small": MICRO}})
    return run_study(study, size="small", seeds=[0], out=out)


@pytest.fixture(scope="module")
def micro_runs(tmp_path_factory) -> tuple[Path, dict, dict]:
    """mole_vs_lora (base model included) at the micro size, twice with seed 0."""
    tmp_path = tmp_path_factory.mktemp("micro")
    return tmp_path, _micro(tmp_path / "a"), _micro(tmp_path / "b")


@pytest.mark.slow
def test_runner_writes_the_table_and_repeats_its_numbers(micro_runs):
    tmp_path, first, second = micro_runs
    assert first["runs"] == second["runs"]  # same seed, same numbers (CPU)
    assert json.loads((tmp_path / "a/results.json").read_text())["summary"] == first["summary"]
    columns = {"exact", "exact/word", "exact/sentence", "loss", "loss/word", "loss/sentence", "train_loss",
               "moe_flops_per_token", "router_separation", "moe_flops_measured"}
    for arm in ("lora", "mole"):
        row = first["runs"][arm]["0"]
        assert set(row) == columns
        assert all(0.0 <= row[c] <= 1.0 for c in ("exact", "exact/word", "exact/sentence", "router_separation"))
        assert row["loss"] > 0 and row["moe_flops_per_token"] > 0
        assert first["summary"][arm]["loss"] == {"mean": row["loss"], "std": 0.0, "min": row["loss"], "max": row["loss"]}
        heldout = json.loads((tmp_path / f"a/seed0/{arm}/heldout.json").read_text())
        assert {k: v["n"] for k, v in heldout["source"].items()} == {"word": 6, "sentence": 6}
        assert (tmp_path / f"a/seed0/{arm}/analysis/analysis.json").is_file()
        assert row["moe_flops_measured"] == row["moe_flops_per_token"]  # no null experts: what the dispatch computes
    assert first["runs"]["lora"]["0"]["router_separation"] == 0.0  # one expert: nothing to separate
    table = (tmp_path / "a/results.md").read_text().splitlines()
    assert sum(line.startswith(("| lora |", "| mole |")) for line in table) == 2
    assert (tmp_path / "a/curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_every_arm_starts_from_the_seeds_base_model(micro_runs):
    """mole_vs_lora trains a base per seed on the word family (LLM and projector), then both arms load its
    vision, projector and LLM groups (MoLE's 4 experts do not fit the base's 1) and keep the LLM frozen."""
    tmp_path = micro_runs[0] / "a"
    base = load_model(tmp_path / "seed0/base/model")
    base_state = base.state_dict()
    first_steps = {}
    for arm in ("lora", "mole"):
        model = load_model(tmp_path / f"seed0/{arm}/model")
        groups = parameter_groups(model)
        llm = [k for k, g in groups.items() if g == "llm"]
        assert len(llm) == 27 and all(torch.equal(model.state_dict()[k], base_state[k]) for k in llm)  # loaded, frozen
        metrics = [json.loads(line) for line in (tmp_path / f"seed0/{arm}/metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics if "eval" in m] == [1, 2]  # held-out loss every step (eval_every=1)
        first_steps[arm] = metrics[0]["lm_loss"]
    # the zero-initialised LoRA deltas leave both arms the base model at step 1: the same LM loss
    assert first_steps["lora"] == pytest.approx(first_steps["mole"], abs=1e-6)
    base_metrics = (tmp_path / "seed0/base/metrics.jsonl").read_text().splitlines()
    assert len(base_metrics) == 2 and first_steps["lora"] < json.loads(base_metrics[0])["lm_loss"]  # the base learned


@pytest.mark.slow
def test_adamoe_study_repeats_its_numbers_and_measures_the_null_expert_saving(tmp_path):
    """adamoe_vs_topk at a micro size with two analysis batches (10 held-out records), twice with seed 0."""
    study = load_study(EXPERIMENTS / "adamoe_vs_topk.yaml")
    micro = SizeConfig(train_records=12, test_records=10, steps=2, micro_batch_size=4)
    study = study.model_copy(update={"sizes": {**study.sizes, "small": micro}})
    first, second = (run_study(study, size="small", seeds=[0], out=tmp_path / run) for run in ("a", "b"))
    assert first["runs"] == second["runs"]
    topk, adamoe = first["runs"]["topk"]["0"], first["runs"]["adamoe"]["0"]
    assert topk["moe_flops_measured"] == topk["moe_flops_per_token"]  # top-2 computes its 2 experts
    analysis = json.loads((tmp_path / "a/seed0/adamoe/analysis/analysis.json").read_text())
    modules = analysis["categories"]["all"]["modules"]
    assert len(modules) == 2 and all(0.0 < m["true_experts_per_token"] < 4.0 for m in modules.values())
    # 4 true experts at k=4 cost twice top-2's expert FLOPs; the measured saving comes off that
    saved = sum(m["expert_flops_saved"] for m in modules.values())
    assert adamoe["moe_flops_measured"] == pytest.approx(2 * topk["moe_flops_per_token"] - saved, rel=0.01)


# A micro mole_vs_lora (base model, LoRA and MoLE arms, analysis) in a fresh process, its CPU kernels
# pinned (argv[4] == "portable") or as torch picks them.
MICRO_STUDY = """
import sys
if sys.argv[4] == "portable":
    from mmoe.experiments.kernels import pin_portable_kernels
    pin_portable_kernels()
from mmoe.experiments import load_study, run_study
from mmoe.experiments.config import SizeConfig
study = load_study(sys.argv[1])
study = study.model_copy(update={"sizes": {**study.sizes, "small": SizeConfig.model_validate_json(sys.argv[2])}})
run_study(study, size="small", seeds=[0], out=sys.argv[3])
"""
# Two machines as the environment can make them on one x86-64 CPU with AVX2: ATen's baseline against its
# AVX2 kernels, MKL's reproducible path against its own choice (capped at AVX2, as is oneDNN), one thread
# against two. Each difference changes float32 rounding; the pins must undo all of them.
MACHINES = {
    "a": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "b": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AUTO", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
          "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
}


def _micro_in_a_process(out: Path, machine: str, kernels: str) -> dict:
    env = {**child_env(drop=(*MACHINES["a"], *MACHINES["b"])), **MACHINES[machine]}
    run = subprocess.run([sys.executable, "-c", MICRO_STUDY, str(EXPERIMENTS / "mole_vs_lora.yaml"), MICRO.model_dump_json(),
                          str(out), kernels], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_portable_kernels_give_the_same_numbers_whatever_the_processor_offers(tmp_path):
    a, b = (_micro_in_a_process(tmp_path / f"portable_{m}", m, "portable") for m in MACHINES)
    assert a["cpu_kernels"] == b["cpu_kernels"] == {"aten_capability": "DEFAULT", "mkl_cbwr": "COMPATIBLE", "threads": 1,
                                                    "onednn": False, "nnpack": False, "portable": True}
    assert a["runs"] == b["runs"]  # every number, bit for bit
    assert (tmp_path / "portable_a/results.md").read_text().endswith("\n\nCPU kernels: portable.\n")
    # the two machines do differ: unpinned, the same runs round differently (this CPU has AVX2, so "b" is real)
    assert torch.backends.cpu.get_cpu_capability() != "DEFAULT"
    native_a, native_b = (_micro_in_a_process(tmp_path / f"native_{m}", m, "native") for m in MACHINES)
    assert (native_a["cpu_kernels"]["threads"], native_b["cpu_kernels"]["threads"]) == (1, 2)
    assert native_b["cpu_kernels"]["aten_capability"] == "AVX2"
    assert not native_a["cpu_kernels"]["portable"] and native_a["runs"] != native_b["runs"]
    assert (tmp_path / "native_a/results.md").read_text().endswith("CPU kernels: native (this machine's).\n")


def test_portable_kernels_refuse_once_torch_has_started():
    before = dict(os.environ)
    with pytest.raises(RuntimeError, match="before torch is imported"):
        pin_portable_kernels()
    assert dict(os.environ) == before  # nothing half-set


def _cost(name: str, *, null: int, computed: float, saved: float) -> LayerCost:
    return LayerCost(name=name, group="-", kind="ffn", experts=4, null_experts=null, experts_per_token=4.0, expert_params=0,
                     router_params=0, active_params=0.0, computed_params=computed, true_experts_per_token=0.0, experts_range=(4.0, 4.0),
                     flops_saved=saved, flops_saved_share=0.0)


def test_measured_flops_take_the_null_expert_picks_the_tokens_made():
    # layer 0: 4 true + 8 null experts, 1,000 FLOPs/token expected at uniform routing, 2,000 saved against k=4
    # without nulls (3,000); its router measured 1,200 saved per token, so 1,800. Layer 1: no null experts.
    costs = [_cost("l0", null=8, computed=500.0, saved=2000.0), _cost("l1", null=0, computed=700.0, saved=0.0)]
    summary = {"categories": {"all": {"modules": {"l0": {"expert_flops_saved": 1200.0}, "l1": {}}}}}
    assert moe_flops_measured(costs, summary) == pytest.approx(1800.0 + 1400.0)


def test_comparison_figure_draws_each_arms_mean_and_range():
    def run(offset: float) -> list[dict]:
        return [{"step": s, "loss": 5.0 - s + offset, **({"eval": {"loss": 4.0 - s + offset}} if s % 2 == 0 else {})} for s in (1, 2, 3, 4)]

    fig = comparison_figure({"topk": [run(0.0), run(1.0)], "dynmole": [run(0.5)]}, title="t")
    train_ax, eval_ax = fig.axes
    assert [ax.get_xlabel() for ax in fig.axes] == ["step", "step"] and train_ax.get_ylabel() == "loss"
    (topk, dynmole), (topk_eval, _) = train_ax.get_lines(), eval_ax.get_lines()
    assert list(topk.get_ydata()) == [4.5, 3.5, 2.5, 1.5] and list(dynmole.get_ydata()) == [4.5, 3.5, 2.5, 1.5]
    assert list(topk_eval.get_xdata()) == [2, 4] and list(topk_eval.get_ydata()) == [2.5, 0.5]
    assert len(train_ax.collections) == 2  # each arm's min..max band


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
