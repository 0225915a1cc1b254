"""Every module imports on its own in a fresh interpreter (no import cycle depends on what came first)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["mmoe.moe.config", "mmoe.moe.core.lora_linear", "mmoe.bench.lora_experts", "mmoe.config.base"])
def test_module_imports_first(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-800:]
