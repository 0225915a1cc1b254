"""Open a benchmark from any supported source: a TSV-layout table file, or a local Hugging Face dataset."""

from __future__ import annotations

from pathlib import Path

from mmoe.eval.benchmark import Benchmark
from mmoe.eval.hf_source import is_hf_source, load_hf_benchmark
from mmoe.eval.tsv import load_benchmark
from mmoe.images import EVAL_LIMITS, ImageLimits


def open_benchmark(path: str | Path, language: str | None = None, split: str | None = None,
                   *, image_limits: ImageLimits = EVAL_LIMITS) -> Benchmark:
    """A table file goes to the TSV loader; a folder or ``.parquet`` file to the Hugging Face loader.
    Every image passes ``image_limits`` (by default decoded in full)."""
    if is_hf_source(path):
        return load_hf_benchmark(path, split=split, language=language, image_limits=image_limits)
    return load_benchmark(path, language, image_limits=image_limits)
