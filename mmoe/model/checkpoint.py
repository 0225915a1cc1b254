"""Save and load an mmoe model directory: config, safetensors weights, tokenizer, preprocessing.

Layout::

    mmoe_config.yaml        the full recipe
    model.safetensors       weights (all, or only the trainable part when the rest reloads from its source)
    weights.json            {"kind": "full" | "trainable"}
    llm_config.json         the LLM's HF config (rebuilds the architecture with no download)
    vision_config.json      the HF vision config (hf backend)
    tokenizer/              tokenizer files
    preprocessor_config.json | timm_data_config.json | open_clip_preprocess.json   preprocessing

Nothing is pickled and no remote code runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mmoe.config.load import parse_config
from mmoe.config.schema import MMoEConfig
from mmoe.errors import MMoEError
from mmoe.model.build import build_model
from mmoe.model.joint import MMoEModel
from mmoe.model.parts import buffer_groups, parameter_groups

CONFIG_FILE = "mmoe_config.yaml"
WEIGHTS_FILE = "model.safetensors"
KIND_FILE = "weights.json"
LLM_CONFIG_FILE = "llm_config.json"
VISION_CONFIG_FILE = "vision_config.json"
TOKENIZER_DIR = "tokenizer"
REQUIRED = (CONFIG_FILE, WEIGHTS_FILE, KIND_FILE, TOKENIZER_DIR)


class CheckpointError(MMoEError, FileNotFoundError):
    """A model directory is missing files or holds weights that do not fit its config."""


def _without_aliases(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop tensors that share storage with an earlier key (tied embeddings)."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for key, tensor in state.items():
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if ident in seen:
            continue
        seen.add(ident)
        out[key] = tensor.detach().contiguous().cpu()
    return out


def _reloadable_base(cfg: MMoEConfig) -> bool:
    """True when frozen weights can be fetched again from a hub id or path."""
    vision_ok = cfg.model.vision.config is None and (cfg.model.vision.backend == "hf" or bool(cfg.model.vision.pretrained))
    return vision_ok and cfg.model.llm.name is not None


def _trainable_state_keys(model: MMoEModel) -> set[str]:
    """Trainable parameters, plus the buffers declared as state of a group that trains (e.g. the aux
    routers' ``trained`` flag)."""
    keys = {name for name, p in model.named_parameters() if p.requires_grad}
    groups = parameter_groups(model)
    training = {groups[name] for name in keys}
    return keys | {name for name, group in buffer_groups(model).items() if group in training}


def save_model(model: MMoEModel, directory: str | Path, weights: Literal["auto", "full", "trainable"] = "auto") -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if weights == "auto":
        weights = "trainable" if _reloadable_base(model.config) else "full"
    state = model.state_dict()
    if weights == "trainable":
        state = {k: v for k, v in state.items() if k in _trainable_state_keys(model)}
    save_file(_without_aliases(state), str(directory / WEIGHTS_FILE), metadata={"format": "pt", "kind": weights})
    (directory / KIND_FILE).write_text(json.dumps({"kind": weights}))
    (directory / CONFIG_FILE).write_text(yaml.safe_dump(model.config.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    (directory / LLM_CONFIG_FILE).write_text(model.llm.config.to_json_string())
    hf_vision = getattr(model.vision_tower, "model", None)
    if model.config.model.vision.backend == "hf":
        (directory / VISION_CONFIG_FILE).write_text(hf_vision.config.to_json_string())
    model.tokenizer.save_pretrained(directory / TOKENIZER_DIR)
    model.vision_tower.save_preprocessing(directory)
    return directory


def _architecture_only(cfg: MMoEConfig, directory: Path) -> MMoEConfig:
    """The same recipe, rebuilt from the saved HF configs with random init (weights come next)."""
    raw = cfg.model_dump(mode="json")
    llm = json.loads((directory / LLM_CONFIG_FILE).read_text())
    raw["model"]["llm"].update(name=None, config=llm)
    vision = raw["model"]["vision"]
    if vision["backend"] == "hf":
        vision.update(name=None, config=json.loads((directory / VISION_CONFIG_FILE).read_text()))
    else:
        vision["pretrained"] = None
    return parse_config(raw, source=str(directory / CONFIG_FILE))


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> MMoEModel:
    """Rebuild a saved model; missing files and mismatched weights are named."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"model directory not found: {directory}")
    missing = [name for name in REQUIRED if not (directory / name).exists()]
    if missing:
        raise CheckpointError(f"model directory {directory} is missing: {', '.join(missing)}")
    cfg = parse_config(_read_yaml(directory / CONFIG_FILE), str(directory / CONFIG_FILE))
    kind = _read_kind(directory / KIND_FILE)
    if kind == "full":
        for name in [LLM_CONFIG_FILE] + ([VISION_CONFIG_FILE] if cfg.model.vision.backend == "hf" else []):
            if not (directory / name).exists():
                raise CheckpointError(f"model directory {directory} is missing: {name}")
        build_cfg = _architecture_only(cfg, directory)
    else:
        build_cfg = cfg
    model = build_model(build_cfg, tokenizer_dir=directory / TOKENIZER_DIR, preprocessing_dir=directory)
    model.config = cfg
    path = directory / WEIGHTS_FILE
    state = read_weights(path)
    _check_fit(state, model.state_dict(), path)
    expected = set(model.state_dict()) if kind == "full" else _trained_state_keys(model, cfg)
    model.load_state_dict(state, strict=False)
    current = model.state_dict()
    loaded = {current[k].data_ptr() for k in state}
    absent = sorted(k for k in expected if k not in state and current[k].data_ptr() not in loaded)
    if absent:
        what = "weights" if kind == "full" else f"{len(absent)} tensors its stage trains (they would start from random init)"
        raise CheckpointError(f"{path} ({kind}) lacks {what}: {absent[:5]}")
    return model.to(device).eval()


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; a truncated or foreign file is a ``CheckpointError`` naming it."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not readable YAML ({exc})") from None


def _read_kind(path: Path) -> str:
    """``weights.json``'s kind, which must be ``full`` or ``trainable``."""
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("kind")
    except (ValueError, AttributeError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: not a JSON object with a 'kind'") from None
    if kind not in ("full", "trainable"):
        raise CheckpointError(f"{path}: kind {kind!r} is neither 'full' nor 'trainable'")
    return kind


def _trained_state_keys(model: MMoEModel, cfg: MMoEConfig) -> set[str]:
    """What a trainable-only file must hold: the parameters (and group buffers) of the groups the saved
    recipe's stage trains; without a ``train`` section, the parameters the recipe leaves trainable."""
    groups = parameter_groups(model)
    if cfg.train is None:
        params = {name for name, p in model.named_parameters() if p.requires_grad}
    else:
        params = {name for name, group in groups.items() if group in cfg.train.stage.trainable}
    training = {groups[name] for name in params}
    return params | {name for name, group in buffer_groups(model).items() if group in training}


def _check_fit(state: dict[str, torch.Tensor], current: dict[str, torch.Tensor], path: Path) -> None:
    unexpected = [k for k in state if k not in current]
    misshapen = [f"{k} {tuple(state[k].shape)} vs {tuple(current[k].shape)}" for k in state if k in current and state[k].shape != current[k].shape]
    if unexpected or misshapen:
        raise CheckpointError(f"{path} does not fit this model: unexpected {unexpected[:5]}, misshapen {misshapen[:5]}")



def load_weights(model: MMoEModel, directory: str | Path, groups: Sequence[str] | None = None) -> list[str]:
    """Load a saved model's weights into a (possibly larger) model, e.g. stage-1 weights into a stage-2 model
    that adds experts. ``groups``: load only the tensors this model assigns to these parameter groups (the
    others are left out before the fit check, so e.g. another expert count does not matter). Returns the
    parameters that stay as initialised; unexpected or misshapen weights fail."""
    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"train.init_from: no {WEIGHTS_FILE} in {directory}")
    state = read_weights(path)
    current = model.state_dict()
    if groups is not None:
        owner = parameter_groups(model) | buffer_groups(model)
        found = {owner[k] for k in state if k in owner}
        absent = [g for g in groups if g not in found]
        if absent:
            raise CheckpointError(f"train.init_groups: {path} holds no tensor of group(s) {absent} of this model (it has {sorted(found)})")
        state = {k: v for k, v in state.items() if k not in current or owner.get(k) in groups}
    _check_fit(state, current, path)
    result = model.load_state_dict(state, strict=False)
    return list(result.missing_keys)
