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


def tokenizer_source(name: str) -> str | None:
    """A loadable tokenizer location for ``name`` without network: ``byte``, a local directory, or a cached snapshot."""
    if name == "byte" or Path(name).is_dir():
        return name
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        found = try_to_load_from_cache(name, "tokenizer_config.json")
    except HFValidationError:
        return None
    return str(Path(found).parent) if isinstance(found, str) else None


def config_only(cfg: MMoEConfig, tokenizer_required: bool = False) -> tuple[MMoEConfig, list[str]]:
    """The recipe with every hub id or path replaced by its configuration; returns notes on what was substituted.

    A tokenizer that is not available locally is replaced by the byte tokenizer (with a note), or is an
    error when ``tokenizer_required`` (lengths measured with it would be wrong).
    """
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
    found = tokenizer_source(source) if source is not None else None
    if found is not None:
        tokenizer["name"] = found
    elif source is not None and tokenizer_required:
        raise ConfigError(f"model.tokenizer: {source!r} is neither a local directory nor in the local Hugging Face cache "
                          f"(nothing is downloaded): fetch it once with `hf download {source}` or name a local directory")
    elif source is not None:
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
