"""``mmoe info`` on full-size recipes: built on the meta device from cached configs only; memory under ZeRO-2/3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import CLIPConfig, LlamaConfig

from mmoe.model.memory import estimate

from tests.conftest import CONFIGS, ROOT

VICUNA_7B = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096)
# Embeddings + lm_head, 32 x (attention 4h^2 + MLP 3hi + 2 norms), final norm: Vicuna-7B's well-known 6,738,415,616.
VICUNA_7B_PARAMS = 2 * 32000 * 4096 + 32 * (4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096) + 4096
CLIP_L_336 = CLIPConfig(vision_config={"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                                       "num_attention_heads": 16, "image_size": 336, "patch_size": 14, "projection_dim": 768})


def _cache_snapshot(cache: Path, repo_id: str, config) -> None:
    """A Hugging Face hub cache entry holding only config.json (the layout huggingface_hub reads)."""
    entry = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(commit)
    snapshot = entry / "snapshots" / commit
    snapshot.mkdir(parents=True)
    config.save_pretrained(snapshot)


def _info(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "mmoe.cli", "info", *args], env=env, capture_output=True, text=True, timeout=300)


def test_full_size_recipe_builds_on_meta_from_cached_configs(tmp_path):
    cache = tmp_path / "hub"
    _cache_snapshot(cache, "lmsys/vicuna-7b-v1.5", VICUNA_7B)
    _cache_snapshot(cache, "openai/clip-vit-large-patch14-336", CLIP_L_336)
    done = _info([str(CONFIGS / "train" / "llava15_stage1.yaml"), "model.moe=null", "--gpus", "1,8"], cache)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert rows["llm"][1] == f"{VICUNA_7B_PARAMS / 1e9:.2f}B" and rows["llm"][1] == "6.74B"
    assert rows["projector"][1] == "20.98M"  # 1024x4096 + 4096 + 4096x4096 + 4096
    assert "visual tokens per image: 576 (width 1024)" in done.stdout  # (336 / 14)^2
    assert "not available locally: the byte tokenizer stands in" in done.stdout
    # Stage 1 trains the projector only: 20.98M trainable of ~7.06B.
    assert "stage 'stage1': 20,979,712 trainable" in done.stdout
    mole = _info([str(CONFIGS / "train" / "mole_llava15_7b.yaml")], cache)
    assert mole.returncode == 0, mole.stderr
    assert "expert layers" in mole.stdout and "llm.model.layers.31.mlp" in mole.stdout


def test_hub_id_without_cached_config_says_so(tmp_path):
    done = _info([str(CONFIGS / "mole_llava15_7b.yaml")], tmp_path / "empty")
    assert done.returncode != 0
    assert "model.llm.name: the config of hub id 'lmsys/vicuna-7b-v1.5' is not in the local Hugging Face cache" in done.stderr
    assert "never downloads" in done.stderr


def test_zero_memory_follows_the_zero_paper():
    # ZeRO paper, 7.5B parameters, 64 GPUs, mixed precision Adam: ZeRO-2 (P_os+g) 2Ψ + 14Ψ/64 = 16.6 GB, ZeRO-3 1.9 GB.
    psi = 7.5e9
    e = estimate(int(psi), int(psi), 64, "bf16")
    assert e.zero2 / 1e9 == pytest.approx(16.64, abs=0.01)
    assert e.zero3 / 1e9 == pytest.approx(1.875, abs=0.001)
    frozen = estimate(int(psi), 0, 8, "bf16")
    assert frozen.zero2 == 2 * psi and frozen.zero3 == 2 * psi / 8
