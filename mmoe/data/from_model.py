"""What a prep measures lengths with, taken from the model it prepares for: tokenizer, chat template, visual tokens per image.

``model`` is a recipe (hub ids read from the local cache, never downloaded) or a saved model
directory. Only the vision tower is built, on the meta device, to count its visual tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mmoe.config.errors import ConfigError
from mmoe.data.config import PrepConfig, TokenizerSpec


def _saved_model_config(directory: Path):
    from mmoe.config.load import parse_config
    from mmoe.model.checkpoint import CONFIG_FILE, TOKENIZER_DIR, VISION_CONFIG_FILE

    if not (directory / CONFIG_FILE).is_file():
        raise ConfigError(f"prep model: {directory} is not a saved mmoe model (no {CONFIG_FILE})")
    raw = yaml.safe_load((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    vision = raw["model"]["vision"]
    if vision.get("backend", "hf") == "hf" and (directory / VISION_CONFIG_FILE).is_file():
        vision.update(name=None, config=json.loads((directory / VISION_CONFIG_FILE).read_text()))
    vision["pretrained"] = None
    raw["model"]["tokenizer"]["name"] = str(directory / TOKENIZER_DIR)
    return parse_config(raw, source=str(directory / CONFIG_FILE))


def model_text_spec(model: str) -> tuple[TokenizerSpec, int]:
    """The model's ``TokenizerSpec`` and its ``tokenizer.max_length``."""
    import torch

    from mmoe.model.vision import build_vision_tower

    path = Path(model)
    if path.is_dir():
        cfg = _saved_model_config(path)
    else:
        from mmoe.config.load import load_config
        from mmoe.model.meta import config_only

        cfg, _ = config_only(load_config(path), tokenizer_required=True)
    with torch.device("meta"):
        tower = build_vision_tower(cfg.model.vision)
    tok = cfg.model.tokenizer
    if tok.name is None:
        raise ConfigError(f"prep model {model}: it names no tokenizer (model.tokenizer.name or model.llm.name)")
    spec = TokenizerSpec(name=tok.name, chat_template=tok.chat_template, image_token=tok.image_token, tokens_per_image=tower.num_tokens)
    return spec, tok.max_length


def measured_with(cfg: PrepConfig) -> str:
    """Where the prep's tokenizer comes from, for the manifest and the summary line."""
    if cfg.model is not None:
        return f"model {cfg.model}"
    if "tokenizer" in cfg.model_fields_set:
        return "the prep config's tokenizer section"
    return "the default: no model or tokenizer given (lengths are not the model's; pass --model)"


def with_model_tokenizer(cfg: PrepConfig) -> PrepConfig:
    """``cfg`` with its tokenizer (and ``max_tokens`` unless set) taken from ``cfg.model``; unchanged without a model."""
    if cfg.model is None:
        return cfg
    spec, max_length = model_text_spec(cfg.model)
    validation = cfg.validation
    if "max_tokens" not in validation.model_fields_set:
        validation = validation.model_copy(update={"max_tokens": max_length})
    return cfg.model_copy(update={"tokenizer": spec, "validation": validation})


def text_processor(spec: TokenizerSpec):
    """An ``MMoEProcessor`` that tokenizes and renders as ``spec`` says (no image transform: lengths and text only)."""
    from mmoe.config.schema import TokenizerConfig
    from mmoe.model.processor import MMoEProcessor
    from mmoe.tokenization.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(TokenizerConfig(name=spec.name, chat_template=spec.chat_template, image_token=spec.image_token), None)
    return MMoEProcessor(tokenizer, None, spec.tokens_per_image, spec.chat_template, spec.image_token)
