"""Portable CPU kernels: a study gives the same float32 numbers on any x86-64 machine, not just on the one it ran on.

PyTorch picks CPU kernels for the processor it finds: ATen's vectorised kernels for the widest ISA it
has (AVX2, AVX-512), MKL's GEMM for the processor model, oneDNN's and NNPACK's convolutions for the ISA
and cache sizes, and reductions split by the thread count. Each choice rounds differently; over a short
training run the differences reach the third digit of a loss. Pinned, the numbers depend on the inputs,
the wheels and the system C maths library only:

- ``ATEN_CPU_CAPABILITY=default``: ATen's baseline kernels, which every x86-64 CPU runs;
- ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility, one code path on every CPU;
- one thread (OpenMP and MKL);
- oneDNN and NNPACK off, so convolutions take ATen's own path (neither has an environment switch).

The first three are read when torch starts, so they are set before it is imported.
"""

from __future__ import annotations

import os
import sys
from typing import TypedDict

PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class CPUKernels(TypedDict):
    aten_capability: str  # torch's answer: "DEFAULT", "AVX2", "AVX512", ...
    mkl_cbwr: str  # the environment's MKL_CBWR ("" when unset), which MKL read at start
    threads: int
    onednn: bool
    nnpack: bool
    portable: bool


def pin_portable_kernels() -> None:
    """Set ``PORTABLE_ENV`` in ``os.environ`` (overriding what the caller had), import torch and turn oneDNN
    and NNPACK off; raise if torch was already imported (the settings would not take) or if they did not take."""
    if "torch" in sys.modules:
        raise RuntimeError("portable CPU kernels must be pinned before torch is imported (torch reads them when it starts)")
    os.environ.update(PORTABLE_ENV)
    import torch

    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
    described = describe_cpu_kernels()
    if not described["portable"]:
        raise RuntimeError(f"portable CPU kernels did not take: {described}")


def describe_cpu_kernels() -> CPUKernels:
    """What this process's CPU kernels are, read from torch and the environment (for a results file)."""
    import torch

    aten, cbwr, threads = torch.backends.cpu.get_cpu_capability(), os.environ.get("MKL_CBWR", ""), torch.get_num_threads()
    onednn, nnpack = torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled()
    portable = (aten, cbwr, threads, onednn, nnpack) == ("DEFAULT", "COMPATIBLE", 1, False, False)
    return CPUKernels(aten_capability=aten, mkl_cbwr=cbwr, threads=threads, onednn=onednn, nnpack=nnpack, portable=portable)
