"""The acceptance scenario: messy LLaVA files are prepared without a crash, every record accounted for."""

from __future__ import annotations

import json
import time

import pytest

from mmoe.data.prep import PrepError, prepare
from mmoe.data.prepared import load_prepared
from tests.data.conftest import prep_config, write_array, write_jsonl


@pytest.mark.parametrize("layout", ["array", "jsonl"])
def test_every_record_is_kept_or_reported(messy, tmp_path, layout):
    root, rows, expected, kept = messy
    writer = write_array if layout == "array" else write_jsonl
    src = writer(rows, root / f"data.{'json' if layout == 'array' else 'jsonl'}")
    start = time.perf_counter()
    manifest = prepare(prep_config(src), tmp_path / "out", progress=False)
    assert time.perf_counter() - start < 60
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert {e["line"]: e["reason"] for e in report} == expected
    by_line = {e["line"]: e for e in report}
    assert by_line[15]["id"] is None  # unreadable JSON: no id
    assert by_line[16]["id"] == "latin1"  # readable apart from the bad byte
    assert by_line[1]["id"] == "missing-img" and by_line[1]["source"] == "llava"
    assert all(set(e) >= {"source", "id", "line", "reason"} for e in report)
    data = load_prepared(tmp_path / "out")
    assert data.records["id"] == kept
    assert manifest["kept"] == len(kept) and manifest["rejected"] == len(expected)
    assert manifest["kept"] + manifest["rejected"] == manifest["read"] == len(rows)
    assert sum(manifest["rejected_by_reason"].values()) == manifest["rejected"]
    assert sum(manifest["languages"].values()) == manifest["kept"]
    assert manifest["sources"]["llava"]["read"] == len(rows)
    assert manifest["tokens"]["count"] == len(kept) and manifest["tokens"]["max"] <= 1024
    assert data.records["num_images"] == [1, 1, 2, 0, 1]


def test_rerun_gives_identical_output(messy, tmp_path):
    root, rows, _, _ = messy
    src = write_array(rows, root / "data.json")
    outputs = []
    for _ in range(2):
        prepare(prep_config(src), tmp_path / "out", progress=False)
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / "out").iterdir()) if p.is_file()})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"data-00000.arrow", "manifest.json", "report.json"}


def test_strict_stops_at_first_bad_record(messy, tmp_path):
    root, rows, _, _ = messy
    src = write_array(rows, root / "data.json")
    with pytest.raises(PrepError, match=r"record 1 \(id missing-img\): missing_image"):
        prepare(prep_config(src, strict=True), tmp_path / "out", progress=False)


def test_refuses_foreign_output_directory(messy, tmp_path):
    root, rows, _, _ = messy
    src = write_array(rows, root / "data.json")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    with pytest.raises(PrepError, match="not empty"):
        prepare(prep_config(src), tmp_path / "out", progress=False)
