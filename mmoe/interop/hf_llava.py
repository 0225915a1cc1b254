"""Import from and export to Hugging Face ``LlavaForConditionalGeneration`` checkpoints.

This is how users start from llava-1.5 (or their own stage-1 runs) and hand models without experts
back to the HF ecosystem. Parity of logits with HF proves the joint is wired the same way.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from transformers import AutoImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaImageProcessor, LlavaProcessor

from mmoe.config.load import parse_config
from mmoe.config.schema import TokenizerConfig
from mmoe.errors import MMoEError
from mmoe.interop.chat_templates import jinja_template
from mmoe.interop.merge import merge_dense_lora
from mmoe.model.build import build_model
from mmoe.model.checkpoint import save_model
from mmoe.model.joint import MMoEModel
from mmoe.model.parts import MOE_GROUPS, parameter_groups
from mmoe.model.projector import MLPProjector
from mmoe.model.vision.hf import HFVisionTower
from mmoe.tokenization.templates import resolve_template
from mmoe.tokenization.tokenizer import load_tokenizer


class InteropError(MMoEError, ValueError):
    """A checkpoint or model that cannot be converted, and why."""


def _select_feature(strategy: str, vision_type: str) -> str:
    has_cls = vision_type.startswith("clip")
    if strategy == "default":
        if not has_cls:
            raise InteropError(f"vision_feature_select_strategy=default drops a CLS token, but {vision_type} has none")
        return "patch"
    return "cls_patch" if has_cls else "patch"


def mmoe_config_from_llava(hf_config: LlavaConfig, image_token: str) -> dict:
    """An mmoe recipe (as a dict) describing the same architecture as an HF LLaVA config."""
    if not isinstance(hf_config.vision_feature_layer, int):
        raise InteropError("vision_feature_layer lists several layers; mmoe reads one hidden layer")
    if hf_config.projector_hidden_act != "gelu" or not hf_config.multimodal_projector_bias:
        raise InteropError("only LLaVA-1.5's projector (Linear+bias, GELU, Linear+bias) is supported")
    vision = hf_config.vision_config.to_dict()
    if vision["model_type"] not in ("clip_vision_model", "siglip_vision_model"):
        raise InteropError(f"unsupported LLaVA vision tower {vision['model_type']!r}; supported: CLIP, SigLIP")
    return {
        "model": {
            "vision": {
                "backend": "hf",
                "config": vision,
                "select_layer": hf_config.vision_feature_layer,
                "select_feature": _select_feature(hf_config.vision_feature_select_strategy, vision["model_type"]),
                "frozen": True,
            },
            "projector": {"type": "mlp2x_gelu"},
            "llm": {"config": hf_config.text_config.to_dict()},
            "tokenizer": {"chat_template": "auto", "image_token": image_token},
        }
    }


def import_hf_llava(source: str | Path) -> MMoEModel:
    """Load an HF LLaVA checkpoint directory (or hub id) as an MMoEModel with identical weights."""
    hf = LlavaForConditionalGeneration.from_pretrained(source, dtype=torch.float32, trust_remote_code=False)
    tokenizer = load_tokenizer(TokenizerConfig(), None, source)
    image_token = tokenizer.convert_ids_to_tokens(hf.config.image_token_id)
    if image_token is None:
        raise InteropError(f"image_token_id {hf.config.image_token_id} is not in the tokenizer of {source}")
    cfg = parse_config(mmoe_config_from_llava(hf.config, image_token), source=f"{source} (LLaVA config)")
    model = build_model(cfg, tokenizer_dir=Path(source))
    vision = HFVisionTower.from_module(cfg.model.vision, hf.model.vision_tower, AutoImageProcessor.from_pretrained(source))
    model.vision_tower = vision.requires_grad_(False)
    projector = hf.model.multi_modal_projector
    model.projector.layers[0].load_state_dict(projector.linear_1.state_dict())
    model.projector.layers[2].load_state_dict(projector.linear_2.state_dict())
    model.llm.model.load_state_dict(hf.model.language_model.state_dict())
    model.llm.lm_head.load_state_dict(hf.lm_head.state_dict())
    return model


def _check_exportable(model: MMoEModel) -> None:
    cfg = model.config.model
    problems = []
    moe = sorted({group for group in parameter_groups(model).values() if group in MOE_GROUPS})
    if moe:
        problems.append(f"it has parameters in the expert groups {moe}")
    if not isinstance(model.projector, MLPProjector) or model.projector.kind != "mlp2x_gelu":
        problems.append(f"its projector is {type(model.projector).__name__}, not a plain mlp2x_gelu")
    if cfg.vision.backend != "hf":
        problems.append(f"its vision backend is {cfg.vision.backend}, HF LLaVA needs a Hugging Face vision model")
    if problems:
        raise InteropError("cannot export to HF LLaVA: " + "; ".join(problems))


_IMAGE_KEYS = ("size", "crop_size", "resample", "image_mean", "image_std", "do_resize", "do_center_crop", "do_rescale",
               "rescale_factor", "do_normalize", "do_convert_rgb")


def hf_image_processor(model: MMoEModel) -> LlavaImageProcessor:
    """The tower's image processor as a ``LlavaImageProcessor``, padding to square when mmoe does (LLaVA-1.5 ``pad``)."""
    source = model.vision_tower.processor
    kwargs = {key: getattr(source, key) for key in _IMAGE_KEYS if getattr(source, key, None) is not None}
    return LlavaImageProcessor(**kwargs, do_pad=model.config.model.vision.image_aspect_ratio == "pad")


def hf_processor(model: MMoEModel, strategy: str) -> LlavaProcessor:
    """The ``LlavaProcessor`` that prepares inputs as mmoe does: patch size, visual tokens, the trained chat template."""
    tokenizer = copy.deepcopy(model.tokenizer)
    template = resolve_template(model.config.model.tokenizer.chat_template, tokenizer)
    if template != "hf":
        tokenizer.chat_template = jinja_template(template, model.config.model.tokenizer.image_token)
    vision = model.vision_tower
    return LlavaProcessor(
        image_processor=hf_image_processor(model),
        tokenizer=tokenizer,
        patch_size=vision.model.config.patch_size,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=1 if vision.has_cls_token else 0,
        chat_template=tokenizer.chat_template,
        image_token=model.config.model.tokenizer.image_token,
    )


def export_hf_llava(model: MMoEModel, out: str | Path) -> Path:
    """Write an HF LLaVA checkpoint directory equivalent to a model without routed experts.

    Dense LoRA is merged into the base weights first (in place: ``model`` is changed). The folder
    loads with ``AutoProcessor`` and ``AutoModelForImageTextToText`` and keeps the chat template.
    """
    merge_dense_lora(model)
    _check_exportable(model)
    out = Path(out)
    cfg = model.config.model
    vision = model.vision_tower
    llm_config = model.llm.config
    if model.image_token_id >= llm_config.vocab_size:
        raise InteropError(
            f"image token id {model.image_token_id} is outside the LLM vocabulary ({llm_config.vocab_size}); "
            "resize the LLM embeddings before exporting"
        )
    strategy = "default" if (vision.has_cls_token and not vision.keeps_cls) else "full"
    hf_config = LlavaConfig(
        vision_config=vision.model.config.to_dict(),
        text_config=llm_config.to_dict(),
        image_token_id=model.image_token_id,
        vision_feature_layer=cfg.vision.select_layer,
        vision_feature_select_strategy=strategy,
        projector_hidden_act="gelu",
        multimodal_projector_bias=True,
        image_seq_length=model.tokens_per_image,
    )
    if vision.has_cls_token is False and cfg.vision.select_feature == "cls_patch":
        raise InteropError("cls_patch without a CLS token cannot be expressed in HF LLaVA")
    hf = LlavaForConditionalGeneration(hf_config).eval()
    hf.model.vision_tower.load_state_dict(vision.model.state_dict())
    hf.model.multi_modal_projector.linear_1.load_state_dict(model.projector.layers[0].state_dict())
    hf.model.multi_modal_projector.linear_2.load_state_dict(model.projector.layers[2].state_dict())
    hf.model.language_model.load_state_dict(model.llm.model.state_dict())
    hf.lm_head.load_state_dict(model.llm.lm_head.state_dict())
    hf.save_pretrained(out)
    hf_processor(model, strategy).save_pretrained(out)
    return out


def convert_from_hf_llava(source: str | Path, out: str | Path) -> Path:
    return save_model(import_hf_llava(source), out, weights="full")
