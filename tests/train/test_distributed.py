"""DeepSpeed with 2 CPU ranks (gloo): ZeRO-2 and ZeRO-3 with MoLE, MoMa and the Parrot projector, where
rank 1 never sees an image. Runs finish; losses are finite and identical across ranks (they are
all-reduced), and so are the trained parameters (data parallelism keeps replicas equal)."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, ROOT

RECIPES = [
    f"mole:{CONFIGS / 'mole.yaml'}:experts,routers",
    f"moma:{CONFIGS / 'moma.yaml'}:experts,routers",
    f"parrot:{CONFIGS / 'parrot.yaml'}:projector,moe_projector,llm",
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["DS_ACCELERATOR"] = "cpu"
    deepspeed = shutil.which("deepspeed", path=str(Path(sys.executable).parent)) or "deepspeed"
    cmd = [deepspeed, "--num_gpus", "2", "--master_port", str(_port()), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_two_cpu_ranks_one_without_images(tmp_path, zero):
    proc = _launch([str(ROOT / "tests" / "train" / "ds_worker.py"), str(tmp_path), zero, *RECIPES], ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"{zero}-rank{r}.json").read_text()) for r in (0, 1)]
    for name in ("mole", "moma", "parrot"):
        history = ranks[0][name]["history"]
        assert len(history) == 3 and all(math.isfinite(x) for x in history)
        assert ranks[1][name]["history"] == history
        assert ranks[1][name]["checksum"] == pytest.approx(ranks[0][name]["checksum"], rel=1e-9)


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
    ], ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) for r in lines)
    assert (out / "model" / "model.safetensors").is_file() and (out / "checkpoints" / "latest").is_file()
