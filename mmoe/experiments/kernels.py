"""Portable CPU kernels: a study gives the same float32 numbers on any x86-64 machine, not just on the one it ran on.

PyTorch picks CPU kernels for the processor it finds: ATen's vectorised kernels for the widest ISA it
has (AVX2, AVX-512), MKL's GEMM for the processor model, oneDNN's convolutions for the ISA and cache sizes,
and reductions split by the thread count. Each choice rounds differently; over a short training run the
differences reach the third digit of a loss. Pinned, the numbers depend on the inputs and the wheels only:

- ``ATEN_CPU_CAPABILITY=default``: ATen's baseline kernels, which every x86-64 CPU runs;
- ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility, one code path on every CPU;
- one thread (OpenMP and MKL);
- oneDNN off, so convolutions take ATen's path (it has no such switch).

The first three are read when torch starts, so they are set before it is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def pin_portable_kernels(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set ``PORTABLE_ENV`` (overriding what the caller had), import torch and turn oneDNN off; raise if torch
    was already imported (the settings would not take) or if they did not take."""
    if "torch" in sys.modules:
        raise RuntimeError("portable CPU kernels must be pinned before torch is imported (torch reads them when it starts)")
    environ.update(PORTABLE_ENV)
    import torch

    torch.backends.mkldnn.enabled = False
    described = describe_cpu_kernels()
    if not described["portable"]:
        raise RuntimeError(f"portable CPU kernels did not take: {described}")


def describe_cpu_kernels() -> dict:
    """What this process's CPU kernels are, read from torch and the environment (for a results file)."""
    import torch

    described = {
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_cbwr": os.environ.get("MKL_CBWR", ""),
        "threads": torch.get_num_threads(),
        "onednn": torch.backends.mkldnn.enabled,
    }
    described["portable"] = described == {"aten_capability": "DEFAULT", "mkl_cbwr": "COMPATIBLE", "threads": 1, "onednn": False}
    return described
