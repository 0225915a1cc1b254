"""Configs the library itself reads, shipped inside the package: DeepSpeed JSON presets and the demo's recipes."""

from __future__ import annotations

from pathlib import Path

PACKAGED = Path(__file__).resolve().parent
DEEPSPEED_PRESETS = {path.stem: path for path in sorted((PACKAGED / "deepspeed").glob("*.json"))}
DEMO_RECIPES = PACKAGED / "demo"
