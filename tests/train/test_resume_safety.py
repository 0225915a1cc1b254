"""Resume never runs code from a checkpoint, never starts silently fresh, and refuses a changed recipe."""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmoe.config import ConfigError, load_config
from mmoe.train.checkpoint import ResumeError
from mmoe.train.loop import train
from mmoe.train.safe_load import UnsafeCheckpointError

from tests.conftest import CONFIGS, ROOT, child_env
from tests.train.toydata import toy_factory

RUN = ["train.micro_batch_size=2", "train.save_every=1", "train.progress=false", "train.report_to=[]",
       "train.schedule=constant", "train.warmup_ratio=0", "train.lr=1e-3", "train.stage.trainable=[projector]"]
STATE_FILES = ("mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_optim_states.pt")


def _cfg(out: Path, *extra: str, recipe: str = "tiny.yaml"):
    return load_config(CONFIGS / recipe, RUN + [f"train.output_dir={out}", *extra])


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory) -> Path:
    """A run with checkpoints at steps 1 and 2 (copied per test)."""
    out = tmp_path_factory.mktemp("run") / "run"
    train(_cfg(out, "train.max_steps=2", "train.resume=none"), toy_factory)
    return out


@pytest.fixture
def run(two_checkpoints, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(two_checkpoints, out)
    return out


class Payload:
    """Unpickling this runs ``exec``: the attack of a crafted checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.mark.parametrize("name", STATE_FILES)
@pytest.mark.parametrize("fmt", ["torch", "pickle"])
@pytest.mark.parametrize("how", ["auto", "path"])
def test_crafted_pickle_in_any_state_file_runs_nothing_and_is_refused(run, tmp_path, name, fmt, how):
    marker = tmp_path / "pwned"
    for step in ("step-0000001", "step-0000002"):
        target = run / "checkpoints" / step / "state" / name
        if fmt == "torch":
            torch.save({"step": 2, "module": {}, "payload": Payload(marker)}, target)
        else:
            target.write_bytes(pickle.dumps({"payload": Payload(marker)}))
    resume = "auto" if how == "auto" else str(run / "checkpoints" / "step-0000002")
    with pytest.raises(UnsafeCheckpointError, match=name):
        train(_cfg(run, "train.max_steps=3", f"train.resume={resume}"), toy_factory)
    assert not marker.exists()


def test_trusted_legacy_checkpoint_loads_when_allowed_explicitly(run):
    """A checkpoint holding a type outside the allow-list (Megatron-style ``args``) is refused, and resumes
    with the opt-in."""
    target = run / "checkpoints" / "step-0000002" / "state" / STATE_FILES[0]
    state = torch.load(target, weights_only=False)
    state["args"] = argparse.Namespace(lr=1e-3)
    torch.save(state, target)
    with pytest.raises(UnsafeCheckpointError, match="resume_trust_pickle"):
        train(_cfg(run, "train.max_steps=3", "train.resume=auto"), toy_factory)
    result = train(_cfg(run, "train.max_steps=3", "train.resume=auto", "train.resume_trust_pickle=true"), toy_factory)
    assert result.history and len(result.history) == 1  # only step 3 ran
    entry = json.loads((run / "resumes.jsonl").read_text().splitlines()[-1])
    assert entry["trusted_pickle"] is True and entry["step"] == 2


def test_stale_latest_falls_back_to_newest_intact_checkpoint(run, capsys):
    (run / "checkpoints" / "latest").write_text("step-0000099")
    with pytest.warns(UserWarning, match="step-0000099, which is not there"):
        result = train(_cfg(run, "train.max_steps=3", "train.resume=auto"), toy_factory)
    assert len(result.history) == 1  # steps 1-2 were not trained again
    assert "resuming from" in capsys.readouterr().err
    assert [m["step"] for m in _metrics(run)] == [1, 2, 3]


def test_stale_latest_with_no_checkpoint_left_is_an_error_not_a_fresh_start(run):
    for step in ("step-0000001", "step-0000002"):
        shutil.rmtree(run / "checkpoints" / step)
    (run / "checkpoints" / "latest").write_text("step-0000002")
    before = (run / "metrics.jsonl").read_text()
    with pytest.raises(ResumeError, match="not there"):
        train(_cfg(run, "train.max_steps=3", "train.resume=auto"), toy_factory)
    assert (run / "metrics.jsonl").read_text() == before


@pytest.mark.parametrize("name", STATE_FILES)
def test_corrupt_newest_checkpoint_falls_back_with_a_warning_naming_the_file(run, name):
    target = run / "checkpoints" / "step-0000002" / "state" / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.warns(UserWarning, match=name):
        result = train(_cfg(run, "train.max_steps=3", "train.resume=auto"), toy_factory)
    assert len(result.history) == 2  # resumed after step 1
    entry = json.loads((run / "resumes.jsonl").read_text().splitlines()[-1])
    assert entry["step"] == 1 and name in entry["passed_over"][0]


def test_changed_learning_rate_is_refused_with_the_differences(run):
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.001 -> 0\.005"):
        train(_cfg(run, "train.max_steps=3", "train.resume=auto", "train.lr=5e-3"), toy_factory)


def test_allowed_change_runs_with_the_new_value_and_records_it(run):
    train(_cfg(run, "train.max_steps=3", "train.resume=auto", "train.lr=5e-3", "train.resume_changes=allow"), toy_factory)
    lrs = [m["lr"]["projector"] for m in _metrics(run)]
    assert lrs[:2] == [pytest.approx(1e-3)] * 2 and lrs[2] == pytest.approx(5e-3)
    entry = json.loads((run / "resumes.jsonl").read_text().splitlines()[-1])
    assert entry["changes"] == ["train.lr: 0.001 -> 0.005"]
    saved = (run / "checkpoints" / "step-0000003" / "model" / "mmoe_config.yaml").read_text()
    assert "lr: 0.005" in saved


def test_changed_trainable_groups_allowed_still_fail_with_a_named_error(run):
    with pytest.raises(ResumeError, match="trainable groups"):
        train(_cfg(run, "train.max_steps=3", "train.resume=auto", "train.stage.trainable=[projector,llm]",
                   "train.resume_changes=allow"), toy_factory)


def test_changed_experts_and_top_k_are_refused(tmp_path):
    out = tmp_path / "mole"
    train(_cfg(out, "train.max_steps=1", "train.resume=none", "train.stage.trainable=[experts,routers]", recipe="mole.yaml"),
          toy_factory)
    with pytest.raises(ConfigError) as info:
        train(_cfg(out, "train.max_steps=2", "train.resume=auto", "train.stage.trainable=[experts,routers]",
                   "model.moe.experts.num_experts=6", "model.moe.router.top_k=2", "model.moe.experts.lora.alpha=32",
                   recipe="mole.yaml"), toy_factory)
    message = str(info.value)
    for change in ("model.moe.experts.num_experts: 4 -> 6", "model.moe.router.top_k: 1 -> 2", "model.moe.experts.lora.alpha: 16"):
        assert change in message


DISK_FULL = """
import resource, signal, sys
sys.path.insert(0, {root!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from mmoe.config import load_config
from mmoe.train.loop import train
from tests.train.toydata import toy_factory
cfg = load_config({cfg!r}, {overrides!r})
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
train(cfg, toy_factory)
"""


def test_disk_full_during_a_save_is_a_named_error(tmp_path):
    out = tmp_path / "run"
    overrides = RUN + ["train.max_steps=1", "train.resume=none", f"train.output_dir={out}"]
    script = DISK_FULL.format(root=str(ROOT), cfg=str(CONFIGS / "tiny.yaml"), overrides=overrides)
    env = child_env()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    last = proc.stderr.strip().splitlines()[-1]
    assert "mmoe.train.checkpoint.CheckpointWriteError: cannot write checkpoint" in last, proc.stderr[-2000:]
    assert "step-0000001" in last and "GiB free there" in last and last.endswith("last good checkpoint: none")
