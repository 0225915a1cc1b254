"""Hostile datasets and benchmark files: no read outside the image root (symlinks included), nothing good
lost for one bad row, no row silently changed, per-record errors for bombs and broken images."""

from __future__ import annotations

import base64
import io
import json
import os
import zlib
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmoe.data.config import parse_prep_config
from mmoe.data.dataset import open_image
from mmoe.data.prep import prepare
from mmoe.data.prepared import load_prepared
from mmoe.data.records import Failure
from mmoe.data.sources import read_captions, read_mcq_tsv
from mmoe.data.synthetic import generate_benchmarks
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.tsv import load_benchmark
from mmoe.images import ImageError


def mmmb_frame(tmp_path: Path) -> pd.DataFrame:
    """Four rows of a generated MMMB file (indices 0-3), every cell a string."""
    path = generate_benchmarks(tmp_path / "gen", n_per_language=4, seed=5, languages=["en"])[0]
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)

CONV = [{"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "Red."}]


def _png(path: Path, colour=(200, 30, 30), size=(16, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def hostile(tmp_path) -> Path:
    """``images/`` (the root) holding a good image, a file symlink and a directory symlink to the outside,
    and a symlink to a system file."""
    root = tmp_path / "images"
    _png(root / "ok.png")
    secret = _png(tmp_path / "outside" / "secret.png", colour=(1, 2, 3))
    os.symlink(secret, root / "link.png")
    os.symlink(secret.parent, root / "linkdir")
    os.symlink("/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd", root / "system.png")
    return tmp_path


ESCAPES = ["link.png", "linkdir/secret.png", "system.png"]


def _report(out: Path) -> list[dict]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _prep(tmp_path: Path, source: dict) -> dict:
    cfg = parse_prep_config({"sources": [source], "tokenizer": {"tokens_per_image": 4}, "langid": {"enabled": False}})
    return prepare(cfg, tmp_path / "out", progress=False)


@pytest.mark.parametrize("kind", ["llava", "sharegpt", "captions", "hf"])
def test_every_reader_refuses_symlinks_out_of_the_image_root(hostile, kind):
    images = ["ok.png", *ESCAPES]
    root = str(hostile / "images")
    if kind == "captions":
        path = hostile / "captions.jsonl"
        path.write_text("".join(json.dumps({"image": im, "caption": "Red."}) + "\n" for im in images))
        source = {"type": "captions", "path": str(path), "image_root": root}
    elif kind == "hf":
        datasets.Dataset.from_dict({"image": images, "conversations": [CONV] * len(images)}).save_to_disk(str(hostile / "hfds"))
        source = {"type": "hf", "path": str(hostile / "hfds"), "image_root": root}
    else:
        path = hostile / "data.json"
        path.write_text(json.dumps([{"id": str(i), "image": im, "conversations": CONV} for i, im in enumerate(images)]))
        source = {"type": kind, "path": str(path), "image_root": root}
    manifest = _prep(hostile, source)
    assert (manifest["read"], manifest["kept"], manifest["rejected"]) == (4, 1, 3)
    assert manifest["rejected_by_reason"] == {"image_outside_root": 3}
    report = _report(hostile / "out")
    assert [e["line"] for e in report] == [1, 2, 3] and all("outside the image root" in e["detail"] for e in report)


def test_training_never_reads_through_a_symlink_planted_after_prep(hostile):
    cell = {"path": "ok.png", "bytes": None}
    assert open_image(cell, str(hostile / "images")).size == (16, 16)
    os.replace(hostile / "images" / "link.png", hostile / "images" / "ok.png")
    with pytest.raises(ImageError, match="outside the image root"):
        open_image(cell, str(hostile / "images"))


def _image_path_tsv(path: Path, cells: list[str]) -> Path:
    frame = mmmb_frame(path.parent).head(len(cells)).drop(columns=["image"])
    frame["image_path"] = cells
    frame.to_csv(path, sep="\t", index=False)
    return path


def test_mcq_tsv_image_paths_stay_inside_the_image_root(hostile):
    secret = hostile / "outside" / "secret.png"
    bench = hostile / "bench"
    bench.mkdir()
    path = _image_path_tsv(bench / "mmmb_en.tsv", ["ok.png", str(secret), "../outside/secret.png", "link.png"])
    items = list(read_mcq_tsv(path, "mcq", image_root=hostile / "images"))
    assert not isinstance(items[0], Failure) and items[0].images[0].data == (hostile / "images" / "ok.png").read_bytes()
    assert [item.error.reason.value for item in items[1:]] == ["image_outside_root"] * 3
    assert all("row" in item.error.detail and "outside the image root" in item.error.detail for item in items[1:])
    # the prep command passes --image-root through: the stored bytes are only the root's image
    manifest = _prep(hostile, {"type": "mcq_tsv", "path": str(path), "image_root": str(hostile / "images")})
    assert (manifest["kept"], manifest["rejected"]) == (1, 3)
    stored = load_prepared(hostile / "out").records["images"]
    assert [im["bytes"] for row in stored for im in row] == [(hostile / "images" / "ok.png").read_bytes()]


def test_captions_row_with_a_stray_tab_is_rejected_not_cut(tmp_path):
    _png(tmp_path / "i.png")
    (tmp_path / "c.tsv").write_text("image\tcaption\ni.png\tA blue\tsquare on red.\ni.png\tA red square.\n", encoding="utf-8")
    items = list(read_captions(tmp_path / "c.tsv", "cap"))
    assert isinstance(items[0], Failure) and "line 2: 3 fields, the header has 2" in items[0].error.detail
    assert items[1].conversations[1].content == "A red square." and items[1].metadata == {}


def _good_rows_tsv(path: Path) -> tuple[pd.DataFrame, list[str]]:
    frame = mmmb_frame(path.parent)
    frame.to_csv(path, sep="\t", index=False)
    return frame, path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_one_bad_mcq_row_loses_nothing_else(tmp_path):
    path = tmp_path / "mmmb_en.tsv"
    frame, lines = _good_rows_tsv(path)
    fields = lines[2].split("\t")
    lines[2] = "\t".join(fields[:2] + ["extra"] + fields[2:])  # a stray tab in row 2
    fields = lines[3].split("\t")
    fields[1] = '"' + fields[1]  # a quote that is never closed in row 3
    lines[3] = "\t".join(fields)
    path.write_text("".join(lines), encoding="utf-8")
    items = list(read_mcq_tsv(path, "mcq"))
    assert len(items) == 4
    assert [isinstance(item, Failure) for item in items] == [False, True, True, False]
    assert "line 3: " in items[1].error.detail and "fields, the header has" in items[1].error.detail
    assert "line 4: " in items[2].error.detail and "quote" in items[2].error.detail
    assert items[3].id == "3" and items[3].conversations[1].content == frame.loc[3, "answer"]
    manifest = _prep(tmp_path, {"type": "mcq_tsv", "path": str(path)})
    assert (manifest["read"], manifest["kept"], manifest["rejected"]) == (4, 2, 2)


def _bomb_b64() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "PNG")
    bomb = bytearray(buf.getvalue())
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    return base64.b64encode(bytes(bomb)).decode()


def _truncated_b64() -> str:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()[:-200]).decode()


def test_decompression_bomb_and_truncated_image_are_reported_per_row(tmp_path):
    frame = mmmb_frame(tmp_path)
    frame.loc[1, "image"] = _bomb_b64()
    frame.loc[2, "image"] = _truncated_b64()
    path = tmp_path / "mmmb_en.tsv"
    frame.to_csv(path, sep="\t", index=False)
    items = list(read_mcq_tsv(path, "mcq"))
    assert [getattr(item, "error", None) and item.error.reason.value for item in items] == [
        None, "image_too_large", "truncated_image", None]
    assert "row 2" in items[1].error.detail and "10000000000 pixels" in items[1].error.detail
    # `eval check` / `eval run` load the file strictly: a named error for the first bad row, before any answer
    with pytest.raises(BenchmarkError, match=r"row 2 \(index 1\).*10000000000 pixels"):
        load_benchmark(path)
    frame.loc[1, "image"] = frame.loc[0, "image"]
    frame.to_csv(path, sep="\t", index=False)
    with pytest.raises(BenchmarkError, match=r"row 3 \(index 2\).*cannot be decoded"):
        load_benchmark(path)


def test_prepared_exif_and_16_bit_images_train_as_they_are_seen(tmp_path):
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "rotated.jpg", exif=exif)
    Image.fromarray(np.full((16, 16), 30000, dtype=np.uint16)).save(tmp_path / "grey16.png")
    assert open_image({"path": "rotated.jpg", "bytes": None}, str(tmp_path)).size == (20, 40)
    grey = np.asarray(open_image({"path": "grey16.png", "bytes": None}, str(tmp_path)))
    assert abs(int(grey[0, 0, 0]) - round(30000 / 257)) <= 1
