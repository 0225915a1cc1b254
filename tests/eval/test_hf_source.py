"""Hugging Face datasets in the lmms-lab MMBench layout, read from local files."""

from __future__ import annotations

import base64

from datasets import Dataset, DatasetDict, Features, Image, Value

from mmoe.eval.circular import prepare
from mmoe.eval.mode import resolve_mode
from mmoe.eval.score import score
from mmoe.eval.sources import open_benchmark

from tests.eval.mmbench_files import mmbench_frame


def _dataset():
    frame = mmbench_frame()
    # lmms-lab stores the image on every row as an Image feature
    real = {index: cell for index, cell in zip(frame["index"], frame["image"]) if index < 1_000_000}
    frame["image"] = [{"bytes": base64.b64decode(real[index % 1_000_000]), "path": None} for index in frame["index"]]
    columns = {c: Value("string") for c in frame.columns if c not in ("image", "index")}
    features = Features({"index": Value("int64"), **columns, "image": Image()})
    records = frame.to_dict("list")
    return Dataset.from_dict({k: records[k] for k in features}, features=features)


def test_save_to_disk_folder(tmp_path):
    DatasetDict({"dev": _dataset()}).save_to_disk(tmp_path / "MMBench_en")
    bench = open_benchmark(tmp_path / "MMBench_en", language="en")
    assert bench.name == "MMBench_en_dev" and len(bench) == 13 and resolve_mode("auto", bench).mode == "circular"
    assert bench.rows[0].load_images()[0].size == (24, 16) and bench.rows[0].l2_category == "attribute_reasoning"
    bench, mode = prepare(bench)
    assert score(bench, {r.index: r.answer for r in bench.rows}, mode.mode).summary()["overall"] == 1.0


def test_parquet_file(tmp_path):
    _dataset().to_parquet(tmp_path / "dev-00000-of-00001.parquet")
    bench = open_benchmark(tmp_path / "dev-00000-of-00001.parquet", language="cn")
    assert bench.language == "zh" and len(bench) == 13
