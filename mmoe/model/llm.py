"""The language model: any Hugging Face causal LM, unmodified."""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from mmoe.config.schema import LLMConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_llm(cfg: LLMConfig) -> PreTrainedModel:
    """Load by hub id / local path, or build from a config dict with random weights."""
    dtype = DTYPES[cfg.dtype]
    if cfg.config is not None:
        raw = dict(cfg.config)
        hf_config = AutoConfig.for_model(raw.pop("model_type"), **raw)
        hf_config._attn_implementation = cfg.attn_implementation
        model = AutoModelForCausalLM.from_config(hf_config, dtype=dtype, trust_remote_code=False)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            cfg.name, dtype=dtype, attn_implementation=cfg.attn_implementation, trust_remote_code=False
        )
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.requires_grad_(not cfg.frozen)
    return model
