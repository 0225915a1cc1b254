"""Score a predictions file (ours, VLMEvalKit's or any tool's) against its benchmark, without a model."""

from __future__ import annotations

from pathlib import Path

from mmoe.eval.benchmark import Benchmark
from mmoe.eval.circular import prepare
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.report import write_reports
from mmoe.eval.score import Judge, score
from mmoe.eval.sources import open_benchmark
from mmoe.eval.table import normalised_names, parse_index, read_table
from mmoe.eval.tsv import benchmark_from_frame
from mmoe.languages import declared_language


def read_predictions(path: str | Path, bench: Benchmark | None = None) -> dict[int, str]:
    """``index`` -> ``prediction`` from a table; with ``bench``, every index must be one of its rows."""
    path = Path(path)
    frame = read_table(path)
    names = normalised_names(frame, str(path))
    for column in ("index", "prediction"):
        if column not in names:
            raise BenchmarkError(str(path), f"missing column {column!r}", column=column)
    known = {row.index for row in bench.rows} if bench is not None else None
    out: dict[int, str] = {}
    for i, (raw_index, prediction) in enumerate(zip(frame[names["index"]], frame[names["prediction"]]), start=1):
        try:
            index = parse_index(raw_index)
        except ValueError:
            raise BenchmarkError(str(path), f"index {raw_index!r} is not an integer", row=i, column=names["index"]) from None
        if index in out:
            raise BenchmarkError(str(path), f"index {index} has a second prediction", row=i, index=index, column=names["index"])
        if known is not None and index not in known:
            raise BenchmarkError(
                str(path), f"index {index} is not a row of {bench.source}", row=i, index=index, column=names["index"]
            )
        out[index] = "" if prediction is None else str(prediction)
    return out


def score_predictions(
    predictions: str | Path,
    out_dir: str | Path,
    benchmark: str | Path | None = None,
    mode: str = "auto",
    language: str | None = None,
    judge: Judge | None = None,
    split: str | None = None,
) -> dict:
    """Score ``predictions`` and write the reports into ``out_dir``; returns the summary.

    Without ``benchmark`` the predictions file must carry the benchmark's columns (as VLMEvalKit's and
    our own predictions files do). Rows the predictions lack count as missing (wrong).
    """
    predictions = Path(predictions)
    if benchmark is not None:
        bench = open_benchmark(benchmark, language, split)
    else:
        frame = read_table(predictions)
        name = predictions.name.split(".")[0]
        bench = benchmark_from_frame(frame, name, str(predictions), declared_language(language, predictions), images=False)
    bench, mode = prepare(bench, mode)
    result = score(bench, read_predictions(predictions, bench), mode, judge)
    extra = {"predictions": str(predictions), "benchmark_file": None if benchmark is None else str(benchmark), "judge": judge is not None}
    return write_reports(result, Path(out_dir), extra)
