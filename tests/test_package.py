"""The package as users get it: a wheel installed without network into a fresh venv, run from elsewhere; a light CLI start."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, ROOT, child_env

HEAVY = ("torch", "transformers", "deepspeed", "pydantic", "numpy", "PIL", "timm", "open_clip", "datasets", "pandas")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_help_imports_no_heavy_library():
    code = ("import sys, contextlib, io\nfrom mmoe.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main(['--help'])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    loaded = json.loads(_run([sys.executable, "-c", code], ROOT).replace("'", '"'))
    assert sorted(set(loaded) & set(HEAVY)) == []


def _isolated_venv(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A venv without mmoe whose site-packages reach this environment's dependencies through a .pth file."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # Not this process's distributed setup either (child_env).
    env = child_env(drop=("PYTHONPATH", "VIRTUAL_ENV"))
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", PIP_NO_INDEX="1", HF_HUB_OFFLINE="1")
    return python, env


@pytest.mark.slow
def test_wheel_installs_offline_and_trains_and_demos_from_another_directory(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(ROOT / "mmoe", source / "mmoe", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"), str(source)], tmp_path)
    wheel = next((tmp_path / "dist").glob("mmoe-*.whl"))
    python, env = _isolated_venv(tmp_path)
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], tmp_path, env)

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([str(python), "-c", "import mmoe.configs; print(mmoe.configs.PACKAGED)"], work, env).strip()
    assert where.startswith(str(tmp_path / "venv")) and sorted(os.listdir(Path(where) / "deepspeed")) == ["zero2.json", "zero3.json"]
    shutil.copy(CONFIGS / "tiny.yaml", work / "recipe.yaml")
    mmoe = str(tmp_path / "venv" / "bin" / "mmoe")
    _run([mmoe, "prep", "--source", "synthetic", "--n", "24", "--out", "prepared", "--no-progress",
          "tokenizer.tokens_per_image=16"], work, env)
    out = _run([mmoe, "train", "recipe.yaml", "data.train=[prepared]", "data.eval=[prepared]", "data.num_workers=0",
                "train.max_steps=2", "train.eval_every=1", "train.micro_batch_size=4", "train.report_to=[]",
                "train.output_dir=run"], work, env)
    assert "trained to step 2" in out
    lines = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "eval" in r] == [1, 2]
    assert (work / "run" / "model").is_dir()
    _run([mmoe, "demo", "--out", "demo", "--train-records", "48", "--test-per-language", "4",
          "--stage1-steps", "1", "--stage2-steps", "1"], work, env)
    report = json.loads((work / "demo" / "report.json").read_text())
    assert len(report["accuracy"]) == 7 and (work / "demo" / "stage2" / "model").is_dir()
