"""The typed schema of an mmoe recipe. Unknown keys are errors (``extra='forbid'``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from mmoe.config.base import StrictModel
from mmoe.data.config import DataConfig
from mmoe.train.config import TrainConfig
from mmoe.moe.config import MoEConfig, ParrotConfig, architecture_error
from mmoe.train.method_configs import method_errors


class VisionConfig(StrictModel):
    """Vision tower: a Hugging Face CLIP/SigLIP vision model, a timm ViT, or an open_clip visual tower.

    ``name`` is a hub id or local path (hf), an architecture name (timm), or a model config name
    (open_clip). ``config`` builds from configuration with random weights (no download): for hf a
    vision-config dict with ``model_type``; for timm extra ``create_model`` kwargs; for open_clip a
    ``vision_cfg`` dict. ``pretrained`` is a local weights file (timm) or a tag/path (open_clip).
    """

    backend: Literal["hf", "timm", "open_clip"] = "hf"
    name: str | None = None
    config: dict[str, Any] | None = None
    pretrained: str | None = None
    select_layer: int = -2
    select_feature: Literal["patch", "cls_patch"] = "patch"
    frozen: bool = True
    image_aspect_ratio: Literal["pad", "resize"] = "pad"

    @model_validator(mode="after")
    def _source(self) -> "VisionConfig":
        if self.backend == "hf" and (self.name is None) == (self.config is None):
            raise ValueError("vision (backend hf) needs exactly one of 'name' (hub id or path) or 'config'")
        if self.backend == "timm" and self.name is None:
            raise ValueError("vision (backend timm) needs 'name', a timm architecture such as vit_base_patch16_224")
        if self.backend == "open_clip" and self.name is None and self.config is None:
            raise ValueError("vision (backend open_clip) needs 'name' (e.g. ViT-B-32) or 'config' (a vision_cfg)")
        return self


class ProjectorConfig(StrictModel):
    """Maps vision features to the LLM width: LLaVA-1.5's ``mlp2x_gelu``, ``linear`` or ``identity``."""

    type: Literal["mlp2x_gelu", "linear", "identity"] = "mlp2x_gelu"
    moe: ParrotConfig | None = None


class LLMConfig(StrictModel):
    """Any Hugging Face causal LM, by hub id / local path, or built from a config dict (random init)."""

    name: str | None = None
    config: dict[str, Any] | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    frozen: bool = False
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = False

    @model_validator(mode="after")
    def _source(self) -> "LLMConfig":
        if (self.name is None) == (self.config is None):
            raise ValueError("llm needs exactly one of 'name' (hub id or path) or 'config' (with model_type)")
        if self.config is not None and "model_type" not in self.config:
            raise ValueError("llm.config needs 'model_type' (e.g. llama, qwen2, qwen3, mistral, gemma)")
        return self


class TokenizerConfig(StrictModel):
    """Tokenizer source and chat template.

    ``name``: hub id or path; ``None`` uses the LLM's; ``byte`` builds the built-in byte-level
    tokenizer (no download, every script). ``chat_template: auto`` uses the tokenizer's own
    template when it has one and ``chatml`` otherwise.
    """

    name: str | None = None
    chat_template: Literal["auto", "chatml", "llava_v1", "plain"] = "auto"
    max_length: int = 2048
    image_token: str = "<image>"
    padding_side: Literal["left", "right"] = "right"


class ModelConfig(StrictModel):
    vision: VisionConfig
    projector: ProjectorConfig = ProjectorConfig()
    llm: LLMConfig
    tokenizer: TokenizerConfig = TokenizerConfig()
    moe: MoEConfig | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _moe(self) -> "ModelConfig":
        if self.projector.moe is not None and self.vision.select_feature != "cls_patch":
            raise ValueError(
                "projector.moe (Parrot) queries the prompt with the projected CLS token: "
                "set vision.select_feature=cls_patch"
            )
        model_type = (self.llm.config or {}).get("model_type")
        error = architecture_error(model_type, self.moe) if self.moe is not None and model_type is not None else None
        if error:
            raise ValueError(error)
        return self


class MMoEConfig(StrictModel):
    """A whole recipe."""

    model: ModelConfig
    data: DataConfig | None = None
    train: TrainConfig | None = None

    @model_validator(mode="after")
    def _training_methods(self) -> "MMoEConfig":
        errors = method_errors(self.model.moe, self.train) if self.train is not None else []
        if errors:
            raise ValueError("; ".join(errors))
        return self
