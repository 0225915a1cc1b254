"""Multiple-choice evaluation on MMBench-family and MMMB benchmarks (VLMEvalKit TSV layout).

``load_benchmark`` reads a file, ``evaluate`` runs a model on benchmarks and writes predictions and
reports, ``score_predictions`` scores any predictions file without a model. Everything is imported on
first use, so the command line stays quick to start.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Benchmark": "mmoe.eval.benchmark",
    "MCQRow": "mmoe.eval.benchmark",
    "BenchmarkError": "mmoe.eval.errors",
    "load_benchmark": "mmoe.eval.tsv",
    "evaluate": "mmoe.eval.run",
    "score_predictions": "mmoe.eval.score_file",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
