"""``mmoe data show`` renders a record as the model sees it; ``mmoe data stats`` summarises the manifest."""

from __future__ import annotations

import json
import re

import pytest

from mmoe.cli import main
from mmoe.data.prepared import load_prepared
from mmoe.data.preview import LEGEND
from mmoe.errors import UsageError

from tests.conftest import CONFIGS


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "synthetic"
    assert main(["prep", "--source", "synthetic", "--n", "12", "--out", str(out), "--no-progress", "--model", str(CONFIGS / "tiny.yaml")]) == 0
    return out


def test_show_marks_the_supervised_reply_and_the_image_positions(prepared, capsys):
    capsys.readouterr()
    assert main(["data", "show", str(prepared), "--index", "3"]) == 0
    header, out = capsys.readouterr().out.split(LEGEND)
    row = load_prepared(prepared).records[3]
    reply = [t["content"] for t in row["conversations"] if t["role"] == "assistant"]
    assert re.findall(r"\[\[(.*?)\]\]", out, flags=re.S) == [f"{text}<|im_end|>\n" for text in reply]
    assert out.count("<image ") == row["num_images"] == 1 and "<image 1: 16 tokens>" in out
    assert f"id {row['id']}" in header and f"language {row['language']}" in header
    assert "<|im_start|>user" in out and "[[<|im_start|>" not in out  # the prompt is context only


def test_show_out_of_range_is_one_named_line(prepared, capsys):
    capsys.readouterr()
    assert main(["data", "show", str(prepared), "--index", "12"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert re.fullmatch(r"mmoe data: error: --index 12 is out of range: .* holds 12 records \(0..11\)\n", err)
    with pytest.raises(UsageError, match="--index 12 is out of range"):
        main(["--debug", "data", "show", str(prepared), "--index", "12"])


def test_stats_lists_languages_sources_and_lengths(prepared, capsys):
    capsys.readouterr()
    assert main(["data", "stats", str(prepared)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((prepared / "manifest.json").read_text())
    for language, n in manifest["languages"].items():
        assert re.search(rf"^  {language}\s+{n}\s+{100 * n / 12:.1f}%$", out, flags=re.M)
    assert re.search(r"^  synthetic\s+12\s+12\s+0", out, flags=re.M)
    assert f"max {manifest['tokens']['max']}" in out and f"(model {CONFIGS / 'tiny.yaml'})" in out
