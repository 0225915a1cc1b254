"""Run named cases and report them: a table on stdout and a JSON document.

JSON (``schema: mmoe-bench/1``): run facts (device, dtype, size, clock, rounds, torch version, CPU
threads, date, commit) and per case its ``params``, ``unit``, ``variants`` (median/p25/p75 of
per-round times), ``ratios`` (``{label: {variant, baseline, median, p25, p75}}`` of per-round time
ratios), ``seconds`` (wall time of the case) and case-specific figures (rates, memory, goals).
"""

from __future__ import annotations

import datetime
import importlib
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Callable

import torch

from mmoe.bench.settings import BenchSettings

SCHEMA = "mmoe-bench/1"
# name -> (module, one-line description); modules are imported only when their case runs
CASES = {
    "lora_experts": ("mmoe.bench.lora_experts", "MoLE layer vs plain LoRA (mmoe, peft) vs frozen MLP, fwd+bwd"),
    "dynmole_experts": ("mmoe.bench.dynmole_experts", "DynMoLE-routed LoRA experts: every expert (wide) vs only the selected (sparse, fast)"),
    "ffn_experts": ("mmoe.bench.ffn_experts", "FFN experts (top-1/2, expert choice, null, groups) vs dense MLP of equal active FLOPs"),
    "routing_methods": ("mmoe.bench.routing_methods", "MoR, GW-MoE, DynMoLE, AdaMoE, FactorLLM vs plain top-k on the same bank, fwd+bwd"),
    "parrot_projector": ("mmoe.bench.parrot_projector", "Parrot MoE projector vs MLP projector, fwd+bwd"),
    "train_step": ("mmoe.bench.train_step", "joint model step: MoLE vs peft LoRA vs full fine-tuning (tokens/s, memory, MFU)"),
    "data_pipeline": ("mmoe.bench.data_pipeline", "decode/resize/tokenise/collate samples/s per core vs the step's consumption"),
    "generate": ("mmoe.bench.generate", "KV-cache greedy decoding tokens/s, MoE vs dense"),
}


def _commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_cases(names: list[str], settings: BenchSettings, progress: Callable[[str, float], None] | None = None) -> dict:
    """Every named case in turn, with the facts needed to read its figures later; ``progress`` hears
    each finished case's name and seconds."""
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise KeyError(f"unknown bench case(s) {unknown}; known: {sorted(CASES)}")
    device_name = torch.cuda.get_device_name(settings.device) if settings.device.type == "cuda" else platform.processor() or platform.machine()
    report = {
        "schema": SCHEMA,
        "device": settings.device.type, "device_name": device_name, "dtype": str(settings.dtype).removeprefix("torch."),
        "size": settings.size, "clock": settings.clock, "warmup": settings.warmup, "repeats": settings.repeats,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": _commit(),
        "cases": {},
    }
    started = time.perf_counter()
    for name in names:
        begin = time.perf_counter()
        torch.manual_seed(0)
        result = importlib.import_module(CASES[name][0]).run(settings)
        result["seconds"] = time.perf_counter() - begin
        report["cases"][name] = result
        if progress is not None:
            progress(name, result["seconds"])
    report["seconds"] = time.perf_counter() - started
    return report


def table(report: dict) -> str:
    """Plain-text table: per case, each variant's median and spread, then each ratio."""
    lines = [f"mmoe bench: {report['device']} ({report['device_name']}), {report['dtype']}, size {report['size']}, "
             f"{report['clock']} clock, {report['repeats']} rounds after {report['warmup']} warm-up, commit {report['commit']}"]
    for name, case in report["cases"].items():
        lines.append(f"\n{name} ({case['seconds']:.1f} s)")
        for variant, s in case["variants"].items():
            lines.append(f"  {variant:<28} {s['median']:>10.2f} {case['unit']}   [{s['p25']:.2f} .. {s['p75']:.2f}]")
        for label, r in case["ratios"].items():
            lines.append(f"  {label:<28} {r['median']:>10.3f} x    [{r['p25']:.3f} .. {r['p75']:.3f}]")
    lines.append(f"\ntotal {report['seconds']:.1f} s")
    return "\n".join(lines)
