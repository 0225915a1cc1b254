"""Prep says which images decoding changes: EXIF-rotated, 16-bit grey scaled to 8 bits, transparency composited."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from mmoe.cli import main
from mmoe.images import ALPHA_COMPOSITED, EXIF_ROTATED, HIGH_BIT_DEPTH_SCALED, ImageLimits, conversions, decode, verify


def _images(root):
    root.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.new("RGB", (40, 20), (0, 0, 255)).save(root / "rotated.jpg", exif=exif, quality=95)
    Image.new("RGB", (40, 20), (0, 0, 255)).save(root / "rotated.png", exif=exif)
    Image.fromarray(np.linspace(0, 65535, 64 * 16, dtype=np.uint16).reshape(16, 64)).save(root / "grey16.png")
    Image.new("RGBA", (16, 16), (0, 0, 0, 128)).save(root / "alpha.png")
    Image.new("RGB", (16, 16), (10, 200, 10)).save(root / "plain.png")
    exif[0x0112] = 1
    Image.new("RGB", (16, 16), (10, 200, 10)).save(root / "upright.jpg", exif=exif)


def _record(i, *images):
    question = "<image>" * len(images) + f"\nWhat is shown in picture {i}?"
    return {"id": f"r{i}", "image": list(images), "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": "A blue rectangle."}]}


def test_conversions_of_real_files(tmp_path):
    _images(tmp_path / "img")
    found = {p.name: verify(p.read_bytes(), ImageLimits(), p.name).notes for p in sorted((tmp_path / "img").iterdir())}
    assert found == {"alpha.png": (ALPHA_COMPOSITED,), "grey16.png": (HIGH_BIT_DEPTH_SCALED,), "plain.png": (),
                     "rotated.jpg": (EXIF_ROTATED,), "rotated.png": (EXIF_ROTATED,), "upright.jpg": ()}
    assert decode((tmp_path / "img" / "rotated.jpg").read_bytes()).size == (20, 40)  # the note says what decode does
    assert Image.open(tmp_path / "img" / "grey16.png").mode.startswith("I")
    assert conversions(Image.open(tmp_path / "img" / "plain.png")) == ()


def test_prep_counts_conversions_per_reason_and_source_and_lists_files(tmp_path, capsys):
    _images(tmp_path / "img")
    records = [_record(0, "rotated.jpg"), _record(1, "grey16.png"), _record(2, "alpha.png"), _record(3, "plain.png"),
               _record(4, "rotated.jpg", "grey16.png"), _record(5, "rotated.png"), _record(6, "upright.jpg"),
               _record(7, "missing.png")]
    (tmp_path / "data.json").write_text(json.dumps(records))
    out = tmp_path / "out"
    assert main(["prep", "--source", "llava", "--input", str(tmp_path / "data.json"), "--image-root", str(tmp_path / "img"),
                 "--out", str(out), "--no-progress", "tokenizer.tokens_per_image=4", "langid.enabled=false"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\nlengths measured")[0])
    expected = {"alpha_composited": 1, "exif_rotated": 3, "high_bit_depth_scaled": 2}
    assert summary["kept"] == 7 and summary["image_notes"] == expected
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["image_notes"] == manifest["sources"]["llava"]["image_notes"] == expected
    assert manifest["image_note_files"] == {"alpha_composited": ["alpha.png"], "exif_rotated": ["rotated.jpg", "rotated.jpg", "rotated.png"],
                                            "high_bit_depth_scaled": ["grey16.png", "grey16.png"]}
    assert main(["data", "stats", str(out)]) == 0
    assert f"images converted on decoding: {json.dumps(expected)}" in capsys.readouterr().out
