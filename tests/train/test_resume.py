"""Exact resume (bit-identical losses on CPU fp32) and crash safety of checkpoint writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmoe import load_model
from mmoe.config import load_config
from mmoe.train.checkpoint import latest_checkpoint
from mmoe.train.loop import train

from tests.conftest import CONFIGS, ROOT, child_env
from tests.train.toydata import WrappedLoader, toy_factory

BASE = ["train.max_steps=12", "train.micro_batch_size=4", "train.gradient_accumulation_steps=2", "train.lr=3e-3",
        "train.save_every=4", "train.progress=false", "train.report_to=[]", "train.stage.trainable=[projector,llm]"]


def _losses(out: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]


class Crash(Exception):
    pass


class CrashingLoader(WrappedLoader):
    """Raises after ``after_batches`` batches, like a crashed job."""

    def __init__(self, loader, after_batches: int) -> None:
        super().__init__(loader)
        self.after = after_batches

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i == self.after:
                raise Crash("simulated crash")
            yield batch


def _crashing_factory(after_batches: int):
    return lambda cfg, model, rank, world: CrashingLoader(toy_factory(cfg, model, rank, world), after_batches)


@pytest.mark.slow
def test_resumed_run_reproduces_uninterrupted_losses_exactly(tmp_path):
    full = load_config(CONFIGS / "tiny.yaml", BASE + [f"train.output_dir={tmp_path / 'full'}", "train.resume=none"])
    train(full, toy_factory)
    resumed = load_config(CONFIGS / "tiny.yaml", BASE + [f"train.output_dir={tmp_path / 'resumed'}", "train.resume=auto"])
    with pytest.raises(Crash):
        # 2 micro-batches per step: crash in step 7, after the step-4 checkpoint.
        train(resumed, _crashing_factory(after_batches=13))
    assert latest_checkpoint(tmp_path / "resumed").name == "step-0000004"
    train(resumed, toy_factory)
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "full")
    assert [s for s, _ in _losses(tmp_path / "full")] == list(range(1, 13))
    assert _losses(tmp_path / "full")[-1][1] < _losses(tmp_path / "full")[0][1]
    kept = sorted(p.name for p in (tmp_path / "full" / "checkpoints").glob("step-*"))
    assert kept == ["step-0000008", "step-0000012"]
    load_model(tmp_path / "full" / "model")


KILL_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from mmoe.config import load_config
from mmoe.train.loop import train
from tests.train.toydata import toy_factory
cfg = load_config({cfg!r}, {overrides!r})
train(cfg, toy_factory)
"""


@pytest.mark.slow
def test_kill_during_save_never_corrupts_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    overrides = BASE[1:] + ["train.max_steps=400", "train.save_every=1", "train.keep_last=2", f"train.output_dir={out}", "train.resume=auto"]
    script = KILL_SCRIPT.format(root=str(ROOT), cfg=str(CONFIGS / "tiny.yaml"), overrides=overrides)
    # A fresh single-process job: drop the process-group variables this test process may hold.
    env = child_env()
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    try:
        deadline = time.time() + 240
        while latest_checkpoint(out) is None or len(list((out / "checkpoints").glob("step-*"))) < 2:
            assert proc.poll() is None and time.time() < deadline, "training did not start checkpointing"
            time.sleep(0.05)
        # Kill while saves are in flight (one save per step).
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    last = latest_checkpoint(out)
    assert last is not None and (last / "state").is_dir() and (last / "model" / "model.safetensors").is_file()
    load_model(last / "model")
    step = int(last.name.split("-")[1])
    cfg = load_config(CONFIGS / "tiny.yaml", overrides[:-3] + [f"train.max_steps={step + 2}", f"train.output_dir={out}", "train.resume=auto"])
    result = train(cfg, toy_factory)
    assert result.step == step + 2
