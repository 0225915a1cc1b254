"""The study table: per arm and column, the mean and spread (sample standard deviation) over seeds."""

from __future__ import annotations

import statistics


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one seed), min and max."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def summarize_runs(runs: dict[str, dict[int, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{arm: {seed: {column: value}}}`` -> ``{arm: {column: spread}}`` (columns every seed has)."""
    out = {}
    for arm, by_seed in runs.items():
        columns = [c for c in next(iter(by_seed.values())) if all(c in row for row in by_seed.values())]
        out[arm] = {c: spread([row[c] for row in by_seed.values()]) for c in columns}
    return out


def overlapping(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two arms' seed ranges (min..max) overlap: then their difference is within seed noise."""
    return a["min"] <= b["max"] and b["min"] <= a["max"]


def markdown(summary: dict[str, dict[str, dict[str, float]]], seeds: list[int]) -> str:
    """One row per arm, one column per metric, ``mean ± std``; a last row says, per column, whether the
    first two arms' seed ranges overlap (within noise) or not."""
    arms = list(summary)
    columns = list(next(iter(summary.values())))
    lines = ["| arm | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(f"{summary[arm][c]['mean']:.4g} ± {summary[arm][c]['std']:.2g}" for c in columns) + " |")
    if len(arms) >= 2 and len(seeds) > 1:
        a, b = arms[0], arms[1]
        verdict = ["within noise" if overlapping(summary[a][c], summary[b][c]) else f"{b} {'>' if summary[b][c]['mean'] > summary[a][c]['mean'] else '<'} {a}"
                   for c in columns]
        lines.append(f"| {b} vs {a} (seed ranges) | " + " | ".join(verdict) + " |")
    lines.append(f"\nmean ± sample std over seeds {', '.join(map(str, seeds))}.")
    return "\n".join(lines)
