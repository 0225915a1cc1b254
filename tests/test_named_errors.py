"""Every bad input the hostile-user probe found is one named line from the CLI (a traceback with --debug),
and saved models are validated when loaded (kind, every trained tensor, readable file)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from mmoe import build_model, load_model
from mmoe.cli import main
from mmoe.config import ConfigError, load_config
from mmoe.model.checkpoint import CheckpointError, load_weights, save_model
from mmoe.tokenization.tokenizer import build_byte_tokenizer, load_tokenizer

from tests.conftest import CONFIGS, ROOT

TINY = str(CONFIGS / "tiny.yaml")


def _one_line_error(capsys, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"mmoe {argv[0]}: error: ")
    for needle in needles:
        assert needle in line
    return line


def test_a_yaml_list_as_config_is_named(tmp_path, capsys):
    (tmp_path / "list.yaml").write_text("- model\n- train\n")
    _one_line_error(capsys, ["info", str(tmp_path / "list.yaml")], "list.yaml", "top level must be a mapping", "list")


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "list.yaml").write_text("- model\n")
    with pytest.raises(ConfigError):
        main(["info", str(tmp_path / "list.yaml"), "--debug"])


@pytest.mark.parametrize("kind", ["missing", "not_an_image", "directory"])
def test_generate_image_errors_are_named(tmp_path, capsys, kind):
    path = tmp_path / "x.png"
    if kind == "not_an_image":
        path.write_text("hello")
    elif kind == "directory":
        path.mkdir()
    expected = {"missing": "file not found", "not_an_image": "not a readable image", "directory": "is a directory"}[kind]
    _one_line_error(capsys, ["generate", TINY, "--image", str(path)], str(path), expected)


def test_hf_source_with_a_missing_path_never_asks_the_hub(tmp_path, capsys):
    missing = tmp_path / "data" / "missing_dir"
    _one_line_error(capsys, ["prep", "--source", "hf", "--input", str(missing), "--out", str(tmp_path / "out"), "--no-progress"],
                    str(missing), "no such directory", "hub is not asked")


def test_missing_training_data_directory_is_one_line(tmp_path, capsys):
    _one_line_error(capsys, ["train", TINY, f"data.train=[{tmp_path / 'nope'}]", "train.max_steps=1",
                             f"train.output_dir={tmp_path / 'run'}", "train.progress=false", "train.report_to=[]"],
                    str(tmp_path / "nope"), "not a prepared dataset")


def test_prep_usage_errors_are_named_not_system_exit(tmp_path, capsys):
    _one_line_error(capsys, ["prep", "--source", "llava", "--out", str(tmp_path / "o")], "--source llava needs --input")


def test_info_bad_gpus_is_one_line_from_the_entry_point():
    argv = [sys.executable, "-m", "mmoe.cli", "info", TINY, "--gpus", "1,x"]
    plain = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr == "mmoe info: error: --gpus takes comma-separated integers, got '1,x'\n"
    debug = subprocess.run([*argv, "--debug"], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "mmoe.errors.UsageError: --gpus" in debug.stderr


def test_no_command_raises_system_exit_with_a_message():
    """``raise SystemExit("...")`` skips the CLI's one-line format and ``--debug``; only exit codes may be raised."""
    offenders = []
    for path in sorted((ROOT / "mmoe").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and getattr(node.exc.func, "id", None) == "SystemExit":
                args = node.exc.args
                if args and isinstance(args[0], (ast.Constant, ast.JoinedStr)) and not isinstance(getattr(args[0], "value", None), int):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_tokenizer_with_custom_code_is_refused_by_name(tmp_path):
    build_byte_tokenizer().save_pretrained(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())
    config.update(auto_map={"AutoTokenizer": ["custom_tok.MyTokenizer", None]}, tokenizer_class="MyTokenizer")
    (tmp_path / "tok" / "tokenizer_config.json").write_text(json.dumps(config))
    marker = tmp_path / "ran"
    (tmp_path / "tok" / "custom_tok.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    cfg = load_config(TINY, [f"model.tokenizer.name={tmp_path / 'tok'}"])
    with pytest.raises(ConfigError, match="trust_remote_code"):
        load_tokenizer(cfg.model.tokenizer, None)
    assert not marker.exists()


def test_info_on_a_hub_recipe_offline_is_one_line(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HF_")}, "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mmoe.cli", "info", TINY, "model.llm.config=null", "model.llm.name=Qwen/Qwen2-0.5B"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("mmoe info: error:") and "Qwen/Qwen2-0.5B" in proc.stderr


@pytest.fixture
def saved(tmp_path) -> tuple[Path, object]:
    cfg = load_config(TINY, ["train.stage.trainable=[projector,llm]", "train.max_steps=1"])
    model = build_model(cfg)
    return save_model(model, tmp_path / "model", weights="trainable"), model


def test_truncated_safetensors_is_named_for_load_and_init_from(saved):
    directory, model = saved
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        load_model(directory)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        load_weights(model, directory)


def test_trainable_only_file_lacking_trained_tensors_is_refused(saved):
    directory, _ = saved
    assert load_model(directory) is not None
    weights = directory / "model.safetensors"
    state = load_file(str(weights))
    dropped = sorted(k for k in state if k.startswith("llm.model.layers."))
    save_file({k: v for k, v in state.items() if k not in dropped}, str(weights), metadata={"format": "pt", "kind": "trainable"})
    with pytest.raises(CheckpointError) as info:
        load_model(directory)
    assert len(dropped) == 24 and "lacks 24 tensors its stage trains" in str(info.value) and dropped[0] in str(info.value)


def test_weights_kind_is_validated(saved):
    directory, _ = saved
    (directory / "weights.json").write_text(json.dumps({"kind": "partial"}))
    with pytest.raises(CheckpointError, match="kind 'partial' is neither"):
        load_model(directory)


def test_misshapen_tensor_is_named(saved):
    directory, _ = saved
    weights = directory / "model.safetensors"
    state = load_file(str(weights))
    key = next(k for k in sorted(state) if k.startswith("projector."))
    state[key] = state[key][:1].clone()
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match=f"misshapen.*{key}"):
        load_model(directory)


def test_demo_out_refuses_a_directory_it_did_not_write(tmp_path, capsys):
    keep = tmp_path / "mine" / "thesis.tex"
    keep.parent.mkdir()
    keep.write_text("years of work")
    _one_line_error(capsys, ["demo", "--out", str(keep.parent), "--train-records", "10"], str(keep.parent), "not empty")
    assert keep.read_text() == "years of work"


def test_generate_accepts_a_good_image(tmp_path):
    Image.new("RGB", (16, 16)).save(tmp_path / "ok.png")
    assert main(["generate", TINY, "--image", str(tmp_path / "ok.png"), "--max-new-tokens", "1"]) == 0
