"""Interleaved timing: each round runs every variant once, in a rotating order, after a warm-up."""

from __future__ import annotations

import statistics
from typing import Callable

from mmoe.bench.settings import BenchSettings


def _summary(values: list[float]) -> dict[str, float]:
    """Median and quartiles (the spread) of a list of per-round values."""
    if len(values) == 1:
        return {"median": values[0], "p25": values[0], "p75": values[0]}
    q = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "p25": q[0], "p75": q[2]}


def interleaved(variants: dict[str, Callable[[], object]], settings: BenchSettings) -> dict[str, list[float]]:
    """Seconds per call of each variant (on the settings' clock), one call per variant per round, rotating who goes first."""
    names = list(variants)
    for _ in range(settings.warmup):
        for name in names:
            variants[name]()
    settings.sync()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(settings.repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            settings.sync()
            start = settings.now()
            variants[name]()
            settings.sync()
            times[name].append(settings.now() - start)
    return times


def compare(
    variants: dict[str, Callable[[], object]], ratios: dict[str, tuple[str, str]], settings: BenchSettings
) -> dict[str, dict]:
    """Times in milliseconds and the requested ratios ``{label: (variant, baseline)}`` of per-round times."""
    times = interleaved(variants, settings)
    out = {
        "unit": "ms",
        "variants": {name: _summary([t * 1e3 for t in values]) for name, values in times.items()},
        "ratios": {},
    }
    for label, (name, base) in ratios.items():
        per_round = [a / b for a, b in zip(times[name], times[base])]
        out["ratios"][label] = {"variant": name, "baseline": base, **_summary(per_round)}
    return out


def rate(count: float, seconds: dict[str, float]) -> dict[str, float]:
    """Items per second from a time summary in milliseconds (quartiles swap: a slow round is a low rate)."""
    return {"median": count * 1e3 / seconds["median"], "p25": count * 1e3 / seconds["p75"], "p75": count * 1e3 / seconds["p25"]}
