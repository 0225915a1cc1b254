"""DeepSpeed with 2 CPU ranks (gloo), ZeRO-2 and ZeRO-3: every shipped tiny recipe trains 8 steps with
micro-batch 2 while the ranks see different numbers of images per step (0, 1 or 2). Runs finish (a hang
fails the test), losses are finite and identical across ranks (they are all-reduced), so are the trained
parameters (data parallelism keeps replicas equal), every parameter of each trainable group moved, and
nothing else did."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, ROOT, child_env

# images per step on (rank 0, rank 1): both without, one rank without, both with, in changing orders
SCHEDULE = [[0, 0], [1, 0], [0, 0], [2, 1], [0, 2], [1, 1], [0, 0], [2, 0]]
EXPERT_CHOICE = [
    "model.moe.router.type=expert_choice", "model.moe.router.score=sigmoid",
    "model.moe.groups.aux_router.hidden_ratio=0.5", "model.moe.losses.balance=0.0",
]
# In the last decoder layer an image token's MLP output reaches only its own logits, which carry no
# label, so MoMa's last-layer image group gets no LM gradient (expert choice has no balance loss either).
LAST_IMAGE_GROUP = "llm.model.layers.1.mlp.core.groups.image."
RUNS = [
    {"name": "mole", "recipe": str(CONFIGS / "mole.yaml"), "trainable": "experts,routers"},
    {"name": "moma_token_choice", "recipe": str(CONFIGS / "moma.yaml"), "trainable": "experts,routers", "may_stay": LAST_IMAGE_GROUP},
    {
        "name": "moma_expert_choice", "recipe": str(CONFIGS / "moma.yaml"), "overrides": EXPERT_CHOICE,
        "trainable": "experts,routers", "may_stay": LAST_IMAGE_GROUP,
    },
    {  # MoMa's second phase, from the expert-choice model: only the causal aux routers learn
        "name": "moma_aux_routers", "recipe": str(CONFIGS / "moma.yaml"), "trainable": "aux_routers",
        "overrides": [*EXPERT_CHOICE, "train.init_from={out}/{zero}-moma_expert_choice/model"],
    },
    # the issue-10 hang: the MoE projector runs but only the MLP projector trains (parrot.yaml's default stage)
    {"name": "parrot_projector_only", "recipe": str(CONFIGS / "parrot.yaml"), "trainable": "projector"},
    {"name": "parrot_stage1", "recipe": str(CONFIGS / "parrot.yaml"), "overrides": ["model.projector.moe.bypass=true"], "trainable": "projector"},
    {
        "name": "parrot_stage2", "recipe": str(CONFIGS / "parrot.yaml"), "trainable": "projector,moe_projector,llm",
        "overrides": ["train.init_from={out}/{zero}-parrot_stage1/model"],
    },
]
HANG_S = 150  # per run; a healthy one takes about 10 s on 2 busy cores


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the deepspeed launcher in its own process group; on timeout kill the whole group (ranks too)."""
    env = child_env()
    env["DS_ACCELERATOR"] = "cpu"
    deepspeed = shutil.which("deepspeed", path=str(Path(sys.executable).parent)) or "deepspeed"
    cmd = [deepspeed, "--num_gpus", "2", "--master_port", str(_port()), *args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"deepspeed run exceeded {timeout} s (hang?):\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_every_recipe_trains_on_two_cpu_ranks_with_uneven_images(tmp_path, zero):
    spec = tmp_path / "runs.json"
    spec.write_text(json.dumps({"out_dir": str(tmp_path), "zero": zero, "schedule": SCHEDULE, "hang_s": HANG_S, "runs": RUNS}))
    proc = _launch([str(ROOT / "tests" / "train" / "ds_worker.py"), str(spec)], ROOT, timeout=len(RUNS) * HANG_S)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"{zero}-rank{r}.json").read_text()) for r in (0, 1)]
    for run in RUNS:
        name, trainable = run["name"], set(run["trainable"].split(","))
        first, second = ranks[0][name], ranks[1][name]
        assert len(first["history"]) == len(SCHEDULE) and all(math.isfinite(x) for x in first["history"]), name
        assert second["history"] == first["history"], name
        assert second["checksum"] == pytest.approx(first["checksum"], rel=1e-9), name
        groups = first["groups"]
        assert trainable <= set(groups), (name, groups)
        for group, moved in groups.items():
            if group in trainable:
                stayed = [n for n in moved["unchanged"] if not ("may_stay" in run and n.startswith(run["may_stay"]))]
                assert not stayed and moved["relative"] > 1e-4, (name, group, moved)
            else:
                assert len(moved["unchanged"]) == moved["tensors"], (name, group, moved)


@pytest.mark.slow
def test_deepspeed_launcher_runs_the_train_module_on_prepared_data(tmp_path):
    from mmoe.data.config import PrepConfig
    from mmoe.data.prep import prepare

    prep = PrepConfig.model_validate({
        "sources": [{"type": "synthetic", "n": 64, "seed": 3, "path": str(tmp_path / "raw")}],
        "tokenizer": {"name": "byte", "chat_template": "chatml", "tokens_per_image": 16},
        "langid": {"enabled": False},
    })
    prepare(prep, tmp_path / "prepared", progress=False)
    out = tmp_path / "run"
    proc = _launch([
        "--module", "mmoe.train", str(CONFIGS / "tiny.yaml"), f"data.train=[{tmp_path / 'prepared'}]", "data.num_workers=0",
        f"train.output_dir={out}", "train.max_steps=3", "train.micro_batch_size=4", "train.progress=false",
        f"train.deepspeed={CONFIGS / 'deepspeed' / 'zero2.json'}", "train.stage.trainable=[projector,llm]",
    ], ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) for r in lines)
    assert (out / "model" / "model.safetensors").is_file() and (out / "checkpoints" / "latest").is_file()
