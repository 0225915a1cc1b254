"""Multiple-choice evaluation on MMBench-family and MMMB benchmarks (VLMEvalKit TSV layout).

``load_benchmark`` reads a file, ``evaluate`` runs a model on benchmarks and writes predictions and
reports, ``score_predictions`` scores any predictions file without a model.
"""

from mmoe.eval.benchmark import Benchmark, MCQRow
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.tsv import load_benchmark

__all__ = ["Benchmark", "BenchmarkError", "MCQRow", "evaluate", "load_benchmark", "score_predictions"]


def __getattr__(name: str):
    # the model-facing parts import torch; keep ``import mmoe.eval`` light for data tools
    if name == "evaluate":
        from mmoe.eval.run import evaluate

        return evaluate
    if name == "score_predictions":
        from mmoe.eval.score_file import score_predictions

        return score_predictions
    raise AttributeError(name)
