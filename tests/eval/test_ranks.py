"""Evaluation over two CPU ranks (gloo) under the deepspeed launcher: rows are sharded, rank 0 merges
one predictions file, byte-equal to the single-process one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mmoe.eval import evaluate
from mmoe.eval.ranks import Ranks

from tests.conftest import child_env
from tests.eval.mmbench_files import mmbench_frame, write_tsv

ROOT = Path(__file__).resolve().parents[2]


def test_shards_cover_every_row_once(mmbench_tsv):
    from mmoe.eval import load_benchmark

    rows = load_benchmark(mmbench_tsv).rows
    shards = [Ranks(r, 3).shard(rows) for r in range(3)]
    assert sorted(row.index for shard in shards for row in shard) == sorted(row.index for row in rows)
    assert [len(s) for s in shards] == [5, 4, 4]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_merge_the_single_process_predictions(tiny_model_dir, tmp_path):
    bench = write_tsv(mmbench_frame(rotations=False), tmp_path / "MMBench_DEV_EN.tsv")  # rotations generated too
    single = evaluate(tiny_model_dir, [bench], tmp_path / "single", batch_size=4, max_new_tokens=4, progress=False,
                      likelihood=True)["MMBench_DEV_EN"]
    env = child_env()
    env.update(DS_ACCELERATOR="cpu", PYTHONPATH=str(ROOT))
    deepspeed = shutil.which("deepspeed", path=str(Path(sys.executable).parent)) or "deepspeed"
    proc = subprocess.run(
        [deepspeed, "--num_gpus", "2", "--master_port", str(_port()), "--no_local_rank", "--module", "mmoe.cli", "eval", "run",
         "--model", str(tiny_model_dir), "--benchmark", str(bench), "--out", str(tmp_path / "multi"), "--batch-size", "4",
         "--max-new-tokens", "4", "--likelihood", "--device", "cpu", "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = tmp_path / "multi" / "MMBench_DEV_EN"
    assert sorted(p.name for p in (folder / "cache").iterdir()) == [
        "generate.rank0-of-2.jsonl", "generate.rank1-of-2.jsonl", "likelihood.rank0-of-2.jsonl", "likelihood.rank1-of-2.jsonl"]
    for name in ("predictions.tsv", "predictions_likelihood.tsv"):
        assert (folder / name).read_bytes() == (tmp_path / "single" / "MMBench_DEV_EN" / name).read_bytes()
    assert proc.stdout.count("MMBench_DEV_EN [en]") == 1  # only rank 0 reports
    assert f"{100 * single['overall']:.2f}% of 4 questions" in proc.stdout
