"""Which scoring mode a benchmark gets, and why: the reason is printed and written to every summary.

In order: a mode given explicitly (``--mode``, a recipe) wins; then the mode ``eval run`` recorded for
the predictions it wrote (``run.json`` beside ``predictions.tsv``); then VLMEvalKit's rule, circular
when the benchmark's name contains ``mmbench``, ``ccbench``, ``circular`` or ``mmcr``; then the rows
themselves (circular when they hold rotations, ``g_index`` or ``index >= 1e6``); vanilla otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmoe.eval.benchmark import Benchmark
from mmoe.eval.choices import MODE_CHOICES

CIRCULAR_NAMES = ("mmbench", "ccbench", "circular", "mmcr")  # VLMEvalKit's name rule (image_mcq.py)


@dataclass(frozen=True)
class ModeChoice:
    mode: str
    reason: str


def resolve_mode(requested: str, bench: Benchmark, recorded: ModeChoice | None = None) -> ModeChoice:
    """The mode for ``bench``; ``requested`` is ``auto`` or a mode, ``recorded`` what a run wrote down."""
    if requested not in MODE_CHOICES:
        raise ValueError(f"mode must be one of {', '.join(MODE_CHOICES)}, not {requested!r}")
    if requested != "auto":
        return ModeChoice(requested, "given explicitly")
    if recorded is not None:
        return recorded
    lowered = bench.name.lower()
    named = [key for key in CIRCULAR_NAMES if key in lowered]
    if named:
        return ModeChoice("circular", f"the name {bench.name!r} contains {named[0]!r} (VLMEvalKit's rule)")
    if bench.has_rotations:
        return ModeChoice("circular", "the rows hold rotations (g_index, or index >= 1e6)")
    return ModeChoice("vanilla", f"the name {bench.name!r} is not an MMBench-family name and the rows hold no rotations")
