"""Put MoE blocks into a Hugging Face causal LM without touching its classes.

Supported architectures have decoder layers at ``model.layers`` whose ``mlp`` is a gate/up/down
MLP (``down(act(gate x) * up x)``); the selected layers' ``mlp`` submodules are replaced by
``MoEBlock``s and everything else stays the unmodified HF model.
"""

from __future__ import annotations

from torch import nn

from mmoe.config.errors import ConfigError
from mmoe.moe.integration.build import build_block
from mmoe.moe.config import MLP_TARGETS, SUPPORTED_ARCHITECTURES, MoEConfig, unsupported_architecture
from mmoe.moe.core.lora_linear import add_attention_lora


class UnsupportedArchitecture(ConfigError):
    """The LLM's decoder layers are not of a kind the MoE blocks can replace."""


def decoder_layers(llm: nn.Module) -> nn.ModuleList:
    """The decoder layers of a supported causal LM; a readable error names the supported ones."""
    model_type = getattr(llm.config, "model_type", type(llm).__name__)
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitecture(unsupported_architecture(model_type))
    decoder = llm.get_decoder() if hasattr(llm, "get_decoder") else llm.model
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise UnsupportedArchitecture(f"{type(llm).__name__} has no decoder layer list at model.layers")
    return layers


def select_layers(spec: str | list[int], num_layers: int) -> list[int]:
    """Indices for ``all``, ``every_other`` (0, 2, 4, ...) or an explicit list."""
    if spec == "all":
        return list(range(num_layers))
    if spec == "every_other":
        return list(range(0, num_layers, 2))
    bad = [i for i in spec if i >= num_layers]
    if bad:
        raise ConfigError(f"moe.layers {bad} out of range: the LLM has {num_layers} decoder layers (0..{num_layers - 1})")
    return sorted(spec)


def _check_mlp(mlp: nn.Module, index: int) -> None:
    missing = [name for name in MLP_TARGETS if not isinstance(getattr(mlp, name, None), nn.Linear)]
    if missing or not hasattr(mlp, "act_fn"):
        raise UnsupportedArchitecture(
            f"decoder layer {index}: {type(mlp).__name__} is not a gate/up/down MLP (missing {missing or ['act_fn']})"
        )


def inject_moe(llm: nn.Module, cfg: MoEConfig) -> None:
    """Replace the selected MLPs by MoE blocks (and add attention LoRA if configured)."""
    layers = decoder_layers(llm)
    for index in select_layers(cfg.layers, len(layers)):
        dense = layers[index].mlp
        _check_mlp(dense, index)
        layers[index].mlp = build_block(dense, cfg)
    if cfg.attention_lora is not None:
        add_attention_lora(layers, cfg.attention_lora)
