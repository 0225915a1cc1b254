"""Score a predictions file (ours, VLMEvalKit's or any tool's) against its benchmark, without a model.

Scoring never adds rows: rows nobody predicted are counted as missing and handled by the ``missing``
policy (see ``mmoe.eval.score``). Rotations are generated only when the predictions hold them (a
file ``eval run`` wrote after generating them). When the predictions carry option columns or an
answer, each row must agree with the benchmark's row of that index; the first that does not is an
error naming the index (rows rotated another way would otherwise be scored against other answers).

VLMEvalKit's collections (``MMMB``, ``MTL_MMBench_DEV``) write one file with ``index`` 0..N-1 plus
``original_index`` and ``SUB_DATASET``: it is split back into its benchmarks, each scored on its own.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pandas as pd

from mmoe.eval.benchmark import Benchmark
from mmoe.eval.circular import expand
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.mode import ModeChoice, resolve_mode
from mmoe.eval.report import acc_table, write_combined, write_reports
from mmoe.eval.score import Judge, score
from mmoe.eval.sources import open_benchmark
from mmoe.eval.table import normalised_names, parse_index, read_table
from mmoe.eval.tsv import benchmark_from_frame
from mmoe.languages import declared_language

RUN_RECORD = "run.json"  # what ``eval run`` writes beside predictions.tsv
COLLECTION_COLUMNS = ("original_index", "sub_dataset")


def read_predictions(frame: pd.DataFrame, source: str, bench: Benchmark) -> tuple[dict[int, str], Benchmark]:
    """``index -> prediction``, each row checked against ``bench``; returns the benchmark the rows belong
    to (``bench`` with its rotations generated when the predictions hold them and ``bench`` does not)."""
    names = normalised_names(frame, source)
    for column in ("index", "prediction"):
        if column not in names:
            raise BenchmarkError(source, f"missing column {column!r}", column=column)
    out: dict[int, tuple[int, dict]] = {}
    for i, record in enumerate(frame.to_dict("records"), start=1):
        raw = record[names["index"]]
        try:
            index = parse_index(raw)
        except ValueError:
            raise BenchmarkError(source, f"index {raw!r} is not an integer", row=i, column=names["index"]) from None
        if index in out:
            raise BenchmarkError(source, f"index {index} has a second prediction", row=i, index=index, column=names["index"])
        out[index] = (i, record)
    known = bench.by_index()
    if any(index not in known for index in out) and not bench.has_rotations:
        expanded = expand(bench)
        if all(index in expanded.by_index() for index in out):
            bench, known = expanded, expanded.by_index()
    for index, (i, record) in out.items():
        if index not in known:
            raise BenchmarkError(source, f"index {index} is not a row of {bench.source}", row=i, index=index, column=names["index"])
        _check_row(record, names, known[index], source, i, bench.source)
    predictions = {index: _text(record[names["prediction"]]) for index, (_, record) in out.items()}
    return predictions, bench


def _text(value) -> str:
    return "" if value is None else str(value)


def _check_row(record: dict, names: dict[str, str], row, source: str, i: int, bench_source: str) -> None:
    """The prediction row's options and answer, where it has them, are the benchmark row's."""
    letters = [c for c in string.ascii_uppercase if c in names]
    expected = {letter: row.options.get(letter, "") for letter in letters}
    if "answer" in names and row.answer is not None:
        expected["answer"] = row.answer
    for key, value in expected.items():
        found = _text(record[names[key]]).strip()
        if found != value.strip():
            raise BenchmarkError(
                source,
                f"{key} is {found!r} here but {value.strip()!r} in {bench_source} for index {row.index}: the predictions were "
                "made on other rows (rotated another way?), so they cannot be scored against this benchmark",
                row=i, index=row.index, column=names[key],
            )


def run_record(predictions: Path) -> dict | None:
    """What ``eval run`` recorded (mode and why, prompt style) for the predictions file it wrote, if this is one."""
    record_path = predictions.parent / RUN_RECORD
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BenchmarkError(str(record_path), f"is not valid JSON ({exc})") from None
    return record if record.get("predictions") == predictions.name else None


def score_predictions(
    predictions: str | Path,
    out_dir: str | Path,
    benchmarks: list[str | Path] | None = None,
    mode: str = "auto",
    language: str | None = None,
    judge: Judge | None = None,
    split: str | None = None,
    missing: str = "strict",
) -> dict[str, dict]:
    """Score ``predictions`` and write the reports into ``out_dir``; returns ``{benchmark name: summary}``.

    Without ``benchmarks`` the predictions file must carry the benchmark's columns (as VLMEvalKit's and
    our own predictions files do). A collection file is scored per ``SUB_DATASET``; its benchmark files
    are matched to the sub-datasets by name (``mmmb_cn.tsv`` for ``MMMB_cn``).
    """
    predictions = Path(predictions)
    frame = read_table(predictions)
    names = normalised_names(frame, str(predictions))
    files = [Path(b) for b in benchmarks or []]
    out_dir = Path(out_dir)
    common = {"mode": mode, "judge": judge, "missing": missing, "record": None}
    if all(c in names for c in COLLECTION_COLUMNS):
        parts = _split_collection(frame, names, str(predictions))
        by_name = {p.name.split(".")[0].lower(): p for p in files}
        unknown = [p for p in files if p.name.split(".")[0].lower() not in {n.lower() for n in parts}]
        if unknown:
            raise BenchmarkError(str(unknown[0]), f"is none of the collection's sub-datasets ({', '.join(parts)})")
        summaries, tables = {}, {}
        for name, part in parts.items():
            file = by_name.get(name.lower())
            bench = (open_benchmark(file, language, split) if file
                     else _own_benchmark(part, name, f"{predictions} [{name}]", declared_language(language, name)))
            summary, table = _score_one(part, f"{predictions} [{name}]", bench, out_dir / name, file, **common)
            summaries[name], tables[name] = summary, table
        write_combined(summaries, out_dir, tables)
        return summaries
    if len(files) > 1:
        raise BenchmarkError(str(predictions), "one benchmark file per predictions file (only collections hold several)")
    if files:
        bench = open_benchmark(files[0], language, split)
    else:
        bench = _own_benchmark(frame, predictions.name.split(".")[0], str(predictions), declared_language(language, predictions))
    common["record"] = run_record(predictions)
    summary, _ = _score_one(frame, str(predictions), bench, out_dir, files[0] if files else None, **common)
    return {bench.name: summary}


def _own_benchmark(frame: pd.DataFrame, name: str, source: str, language: str | None) -> Benchmark:
    return benchmark_from_frame(frame, name, source, language, images=False)


def _score_one(
    frame: pd.DataFrame,
    source: str,
    bench: Benchmark,
    out_dir: Path,
    benchmark_file: Path | None,
    *,
    mode: str,
    judge: Judge | None,
    missing: str,
    record: dict | None,
) -> tuple[dict, pd.DataFrame]:
    values, bench = read_predictions(frame, source, bench)
    recorded = None if record is None else ModeChoice(record["mode"], f"recorded by eval run: {record['mode_reason']}")
    choice = resolve_mode(mode, bench, recorded)
    result = score(bench, values, choice.mode, judge, missing)
    extra = {
        "mode_reason": choice.reason,
        "predictions": source,
        "benchmark_file": None if benchmark_file is None else str(benchmark_file),
        "n_rows_read": len(frame),
        "style": None if record is None else record.get("style"),
        "judge": judge is not None,
    }
    return write_reports(result, out_dir, extra), acc_table(result)


def _split_collection(frame: pd.DataFrame, names: dict[str, str], source: str) -> dict[str, pd.DataFrame]:
    """VLMEvalKit's collection file split per ``SUB_DATASET``, ``index`` restored from ``original_index``."""
    sub, original = names["sub_dataset"], names["original_index"]
    empty = frame.index[frame[sub].astype(str).str.strip() == ""]
    if len(empty):
        raise BenchmarkError(source, "empty SUB_DATASET", row=int(empty[0]) + 1, column=sub)
    parts = {}
    for name, part in frame.groupby(sub, sort=False):
        part = part.drop(columns=[names["index"], sub]).rename(columns={original: "index"})
        parts[str(name)] = part.reset_index(drop=True)
    return parts
