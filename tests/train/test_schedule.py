"""Schedule length (steps or epochs), validation loss, the lr of each step, precision, console and sinks."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from mmoe.config import ConfigError, load_config
from mmoe.data.collate import model_inputs
from mmoe.model.processor import MMoEProcessor
from mmoe.train.engine import deepspeed_config, resolve_precision
from mmoe.train.loop import train
from mmoe.train.validation import eval_plan, supervised_tokens

from tests.conftest import CONFIGS
from tests.train.toydata import ColourDataset, collate, toy_factory

QUIET = ["train.resume=none", "train.micro_batch_size=8", "train.report_to=[]", "train.progress=false"]


def _cfg(tmp_path, *extra):
    return load_config(CONFIGS / "tiny.yaml", QUIET + [f"train.output_dir={tmp_path}", *extra])


def _metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def _toy_eval(cfg, model, rank, world, n: int = 20):
    """Validation batches of the colour task, built the way the recipe's data.eval batches are."""
    processor = MMoEProcessor.from_model(model)
    dataset = ColourDataset(processor, n)
    pad = collate(processor)
    return [(pad([dataset[i] for i in indices]), counted) for indices, counted in eval_plan(n, cfg.train.micro_batch_size, rank, world)]


@pytest.mark.parametrize("extra,problem", [
    (["train.max_steps=3", "train.epochs=1"], "both are set"),
    (["train.max_steps=null"], "neither is set"),
])
def test_exactly_one_of_max_steps_and_epochs(tmp_path, extra, problem):
    with pytest.raises(ConfigError, match=f"exactly one of train.max_steps or train.epochs \\({problem}"):
        _cfg(tmp_path, *extra)


def test_epochs_become_steps_over_this_ranks_batches(tmp_path):
    # 64 samples / 8 per batch = 8 batches per epoch; 1.5 epochs with 2 micro-batches per step = 6 steps.
    cfg = _cfg(tmp_path, "train.max_steps=null", "train.epochs=1.5", "train.gradient_accumulation_steps=2")
    result = train(cfg, toy_factory, lambda *a: None)
    assert result.step == 6
    assert [r["step"] for r in _metrics(tmp_path)] == [1, 2, 3, 4, 5, 6]


def test_logged_lr_is_the_lr_the_step_used(tmp_path):
    # Constant schedule, 2 warmup steps of 4: the updates of steps 1, 2, 3 use lr 0, lr/2, lr.
    cfg = _cfg(tmp_path, "train.max_steps=4", "train.schedule=constant", "train.warmup_ratio=0.5", "train.lr=1e-3",
               "train.stage.trainable=[projector]")
    train(cfg, toy_factory, lambda *a: None)
    lrs = [r["lr"]["projector"] for r in _metrics(tmp_path)]
    assert lrs == pytest.approx([0.0, 5e-4, 1e-3, 1e-3])


def test_validation_loss_every_eval_every_steps_matches_the_final_model(tmp_path):
    box = {}

    def factory(cfg, model, rank, world):
        box["model"] = model
        return toy_factory(cfg, model, rank, world)

    cfg = _cfg(tmp_path, "train.max_steps=5", "train.eval_every=2", "train.lr=3e-3", "train.report_to=[tensorboard]",
               "train.stage.trainable=[projector,llm]")
    train(cfg, factory, _toy_eval)
    lines = _metrics(tmp_path)
    evaluated = {r["step"]: r["eval"]["loss"] for r in lines if "eval" in r}
    assert sorted(evaluated) == [2, 4, 5]  # every 2 steps, and after the last one
    assert evaluated[5] < evaluated[2]
    model = box["model"].eval()
    weighted, tokens = 0.0, 0
    with torch.no_grad():
        for batch, counted in _toy_eval(cfg, model, 0, 1):
            n = supervised_tokens(batch["labels"])
            weighted += float(model(**model_inputs(batch)).lm_loss) * n * counted
            tokens += n * counted
    assert evaluated[5] == pytest.approx(weighted / tokens, rel=1e-5)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/loss")] == [2, 4, 5]


def test_eval_every_without_eval_data_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="train.eval_every=2 needs validation data: set data.eval"):
        train(_cfg(tmp_path, "train.max_steps=2", "train.eval_every=2"), toy_factory, lambda *a: None)


@pytest.mark.parametrize("size,batch,world", [(17, 8, 2), (5, 4, 3), (16, 8, 2), (1, 8, 4)])
def test_eval_plan_counts_every_sample_once_with_equal_forwards_per_rank(size, batch, world):
    plans = [eval_plan(size, batch, rank, world) for rank in range(world)]
    assert len({len(p) for p in plans}) == 1
    counted = sorted(i for p in plans for indices, c in p if c for i in indices)
    assert counted == list(range(size))


@pytest.mark.parametrize("precision,cuda,bf16,expected", [
    ("auto", True, True, "bf16"), ("auto", True, False, "fp16"), ("auto", False, False, "fp32"),
    ("fp16", True, True, "fp16"), ("fp32", True, True, "fp32"),
])
def test_auto_precision_falls_back_to_fp16_where_bf16_is_missing(precision, cuda, bf16, expected):
    assert resolve_precision(precision, cuda, bf16) == expected


def test_fp16_gets_dynamic_loss_scaling(tmp_path):
    ds = deepspeed_config(_cfg(tmp_path, "train.max_steps=1", "train.precision=fp16").train, world_size=1)
    assert ds["fp16"]["enabled"] is True and ds["fp16"]["loss_scale"] == 0  # 0 = dynamic in DeepSpeed
    assert ds["fp16"]["initial_scale_power"] == 16
    assert ds["bf16"]["enabled"] is False


def test_log_file_gets_plain_lines_without_carriage_returns(tmp_path, capfd):
    train(_cfg(tmp_path, "train.max_steps=4", "train.log_every=2", "train.progress=true"), toy_factory, lambda *a: None)
    out, err = capfd.readouterr()
    assert "\r" not in out + err
    lines = [line for line in out.splitlines() if line.startswith("step ")]
    assert [line.split(" | ")[0] for line in lines] == ["step 2/4", "step 4/4"]
    assert " | loss " in lines[0] and " | lr " in lines[0]


def test_wandb_requested_but_missing_says_so_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(ConfigError, match="'wandb' package is not installed"):
        train(_cfg(tmp_path, "train.max_steps=1", "train.report_to=[tensorboard,wandb]"), toy_factory, lambda *a: None)
    assert not (tmp_path / "metrics.jsonl").exists()


def _fp16_probe(monkeypatch, supported: bool) -> None:
    """Pin DeepSpeed's fp16 capability probe: on CPU it reads the host's oneDNN kernels, which differ by machine,
    while torch itself computes fp16 on any CPU, so both outcomes are tested on every machine."""
    from deepspeed.accelerator import get_accelerator

    monkeypatch.setattr(type(get_accelerator()), "is_fp16_supported", lambda self: supported)


def test_fp16_without_accelerator_support_is_a_named_config_error(tmp_path, monkeypatch):
    _fp16_probe(monkeypatch, False)
    cfg = _cfg(tmp_path / "run", "train.max_steps=1", "train.precision=fp16")
    with pytest.raises(ConfigError, match=r"train.precision=fp16: DeepSpeed's cpu accelerator reports no fp16 support"):
        train(cfg, toy_factory, lambda *a: None)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_fp16_overflow_lowers_the_loss_scale_instead_of_stopping(tmp_path, monkeypatch):
    # A 2**30 start overflows fp16 gradients: DeepSpeed skips those updates and lowers the scale; training goes on.
    _fp16_probe(monkeypatch, True)
    ds = tmp_path / "fp16.json"
    ds.write_text(json.dumps({"fp16": {"initial_scale_power": 30, "hysteresis": 1}, "zero_optimization": {"stage": 2}}))
    cfg = _cfg(tmp_path / "run", "train.max_steps=3", "train.precision=fp16", f"train.deepspeed={ds}")
    train(cfg, toy_factory, lambda *a: None)
    lines = _metrics(tmp_path / "run")
    assert lines[0]["overflow"] is True
    assert [r["loss_scale"] for r in lines[:2]] == [2.0**29, 2.0**28]


def test_wandb_runs_offline_and_records_the_logged_steps(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(_cfg(tmp_path, "train.max_steps=3", "train.report_to=[wandb]"), toy_factory, lambda *a: None)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    run_id = (tmp_path / "wandb_run_id").read_text()
    assert runs[0].name.endswith(run_id)
    assert (runs[0] / f"run-{run_id}.wandb").stat().st_size > 0
