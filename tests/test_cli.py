"""The CLI entry points of the foundation: info, generate."""

from __future__ import annotations

from mmoe.cli import main

from tests.conftest import CONFIGS


def test_info_prints_parts_and_visual_tokens(capsys):
    assert main(["info", str(CONFIGS / "tiny.yaml")]) == 0
    out = capsys.readouterr().out
    for needle in ("vision tower", "projector", "llm", "trainable", "visual tokens per image: 16", "float32"):
        assert needle in out


def test_generate_runs_forward_and_generation(capsys):
    assert main(["generate", str(CONFIGS / "tiny.yaml"), "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert "forward: logits (1," in out and "answer:" in out


def test_bad_override_is_one_clear_line(capsys):
    assert main(["info", str(CONFIGS / "tiny.yaml"), "model.vision.backend=keras"]) == 2
    err = capsys.readouterr().err
    assert "model.vision.backend" in err and "Traceback" not in err
