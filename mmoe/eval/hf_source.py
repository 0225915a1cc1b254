"""Benchmarks stored as Hugging Face datasets in the lmms-lab MMBench layout (``index``, ``question``,
``hint``, ``A``-``D``, ``answer``, ``category``, ``image`` as an Image feature or base64 string,
``L2-category``, ``split``), read from local files only: a ``save_to_disk`` folder, a downloaded
dataset repository (``huggingface-cli download lmms-lab/MMBench --repo-type dataset``), or parquet
files. Rows become the TSV layout and go through the same validation as TSV files."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd

from mmoe.eval.benchmark import Benchmark
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.tsv import benchmark_from_frame
from mmoe.images import EVAL_LIMITS, ImageLimits
from mmoe.languages import language_from_file_name, normalize_language

CONFIG_LANGUAGES = {"en": "en", "cn": "zh", "cc": "zh", "ru": "ru", "ko": "ko"}


def is_hf_source(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() or path.suffix.lower() == ".parquet"


def _open(path: Path, config: str | None):
    from datasets import load_dataset, load_from_disk

    if path.is_file():
        return load_dataset("parquet", data_files=str(path))
    if any((path / marker).exists() for marker in ("dataset_dict.json", "state.json")):
        return load_from_disk(str(path))
    return load_dataset(str(path), config)


def load_hf_benchmark(path: str | Path, config: str | None = None, split: str | None = None, language: str | None = None,
                      *, image_limits: ImageLimits = EVAL_LIMITS) -> Benchmark:
    """Read a local Hugging Face dataset; ``split`` defaults to ``dev``, then ``validation``, then the only one."""
    from datasets import DatasetDict
    from datasets import Image as ImageFeature

    path = Path(path)
    if not path.exists():
        raise BenchmarkError(str(path), "not found; download the dataset first (the evaluator never downloads)")
    data = _open(path, config)
    if isinstance(data, DatasetDict):
        splits = list(data)
        chosen = split or next((s for s in ("dev", "validation") if s in splits), splits[0] if len(splits) == 1 else None)
        if chosen not in splits:
            raise BenchmarkError(str(path), f"choose a split with --split: {', '.join(splits)}")
        data, split = data[chosen], chosen
    if "image" in data.column_names and isinstance(data.features["image"], ImageFeature):
        data = data.cast_column("image", ImageFeature(decode=False))
    frame = pd.DataFrame({column: [_cell(value) for value in data[column]] for column in data.column_names})
    name = "_".join(part for part in (path.name.split(".")[0], config, split) if part)
    lang = normalize_language(language) or CONFIG_LANGUAGES.get(config or "") or language_from_file_name(name)
    return benchmark_from_frame(frame, name, str(path), lang, base_dir=path if path.is_dir() else path.parent, image_limits=image_limits)


def _cell(value) -> str:
    """A TSV-style string: image dicts become base64 (or their path), missing values become empty."""
    if value is None:
        return ""
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        if value.get("bytes"):
            return base64.b64encode(value["bytes"]).decode()
        return str(value.get("path") or "")
    if isinstance(value, float) and value != value:
        return ""
    return str(value)
