"""Build a recipe on the meta device from configuration files only: full-size models described in seconds, no download.

Hub ids are read from the local Hugging Face cache (their ``config.json``); a local directory is read
in place. Weights are never loaded and parameters take no memory.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmoe.config.errors import ConfigError
from mmoe.config.schema import MMoEConfig


def config_dir(name: str, key: str) -> Path:
    """The directory holding ``name``'s ``config.json``: a local directory, or the cached hub snapshot."""
    if Path(name).is_dir():
        if not (Path(name) / "config.json").is_file():
            raise ConfigError(f"{key}: {name} has no config.json")
        return Path(name)
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        found = try_to_load_from_cache(name, "config.json")
    except HFValidationError:
        raise ConfigError(f"{key}: {name!r} is neither a local directory nor a hub id") from None
    if not isinstance(found, str):
        raise ConfigError(
            f"{key}: the config of hub id {name!r} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}); "
            f"`mmoe info` never downloads: fetch it once with `hf download {name} config.json` or name a local directory"
        )
    return Path(found).parent


def _vision_config(raw: dict) -> dict:
    """A CLIP/SigLIP vision config dict: the ``vision_config`` of a full model config, or the config itself."""
    if "vision_config" in raw:
        return {**raw["vision_config"], "model_type": f"{raw['model_type']}_vision_model"}
    return raw


def _has_tokenizer(directory: Path) -> bool:
    return any((directory / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))


def config_only(cfg: MMoEConfig) -> tuple[MMoEConfig, list[str]]:
    """The recipe with every hub id or path replaced by its configuration; returns notes on what was substituted."""
    raw = cfg.model_dump(mode="json")
    model = raw["model"]
    notes = []
    llm_name = model["llm"]["name"]
    if llm_name is not None:
        model["llm"]["config"] = json.loads((config_dir(llm_name, "model.llm.name") / "config.json").read_text())
        model["llm"]["name"] = None
    vision = model["vision"]
    if vision["backend"] == "hf" and vision["name"] is not None:
        full = json.loads((config_dir(vision["name"], "model.vision.name") / "config.json").read_text())
        vision["config"], vision["name"] = _vision_config(full), None
    vision["pretrained"] = None
    tokenizer = model["tokenizer"]
    source = tokenizer["name"] or llm_name
    if source not in (None, "byte"):
        try:
            directory = config_dir(source, "model.tokenizer.name")
        except ConfigError:
            directory = None
        if directory is not None and _has_tokenizer(directory):
            tokenizer["name"] = str(directory)
        else:
            tokenizer["name"] = "byte"
            notes.append(f"tokenizer {source!r} is not available locally: the byte tokenizer stands in "
                         "(parameter counts come from the configs and are unaffected)")
    return MMoEConfig.model_validate(raw), notes


def build_on_meta(cfg: MMoEConfig):
    """The assembled model with parameters on the meta device (shapes and counts only)."""
    import torch

    from mmoe.model.build import build_model

    with torch.device("meta"):
        return build_model(cfg)
