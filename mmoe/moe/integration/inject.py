"""Put MoE blocks into a Hugging Face causal LM without touching its classes.

Supported architectures have decoder layers at ``model.layers`` whose ``mlp`` is a gate/up/down
MLP (``down(act(gate x) * up x)``); the selected layers' ``mlp`` submodules are replaced by
``MoEBlock``s and everything else stays the unmodified HF model. With ``moe.perft`` the LLM is an
MoE (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE): each selected layer's HF sparse-MoE block becomes a
submodule of a PERFT block, which calls it and adds routed PEFT experts. With
``moe.experts.ffn.init: native`` (Mixtral, Qwen3-MoE, OLMoE) each selected sparse-MoE block is
replaced by an MoE block that adopts its gate and experts (``mmoe.moe.integration.native``).
"""

from __future__ import annotations

from torch import nn

from mmoe.config.errors import ConfigError
from mmoe.moe.integration.build import build_block, build_perft_block
from mmoe.moe.config import MLP_TARGETS, MoEConfig, architecture_error
from mmoe.moe.core.lora_linear import add_attention_lora
from mmoe.moe.integration.native import adopt_native_block
from mmoe.moe.methods.perft import sparse_block_class


class UnsupportedArchitecture(ConfigError):
    """The LLM's decoder layers are not of a kind the MoE blocks can replace."""


def model_type(llm: nn.Module) -> str:
    return getattr(llm.config, "model_type", type(llm).__name__)


def decoder_layers(llm: nn.Module, cfg: MoEConfig | None = None) -> nn.ModuleList:
    """The decoder layers of a causal LM that ``cfg`` (default: MoE blocks for dense MLPs) supports; a
    readable error names the supported ones."""
    error = architecture_error(model_type(llm), cfg if cfg is not None else MoEConfig())
    if error:
        raise UnsupportedArchitecture(error)
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


def _check_sparse(mlp: nn.Module, kind: str, index: int, method: str) -> None:
    expected = sparse_block_class(kind)
    if not isinstance(mlp, expected):
        raise UnsupportedArchitecture(
            f"decoder layer {index}: {type(mlp).__name__} is not {kind}'s sparse MoE block {expected.__name__} (a dense "
            f"layer?); {method}: list only MoE layers in moe.layers"
        )


def inject_moe(llm: nn.Module, cfg: MoEConfig) -> None:
    """Replace the selected MLPs by MoE blocks, wrap their sparse-MoE blocks in PERFT blocks, or adopt
    those as MoE blocks (and add attention LoRA if configured)."""
    layers = decoder_layers(llm, cfg)
    kind = model_type(llm)
    for index in select_layers(cfg.layers, len(layers)):
        mlp = layers[index].mlp
        if cfg.perft is not None:
            _check_sparse(mlp, kind, index, "PERFT adds experts beside an MoE block")
            layers[index].mlp = build_perft_block(mlp, cfg, dim=llm.config.hidden_size)
        elif cfg.adopts_native:
            _check_sparse(mlp, kind, index, "moe.experts.ffn.init=native adopts an MoE block")
            layers[index].mlp = adopt_native_block(mlp, cfg, model_type=kind, index=index)
        else:
            _check_mlp(mlp, index)
            layers[index].mlp = build_block(mlp, cfg)
    if cfg.attention_lora is not None:
        add_attention_lora(layers, cfg.attention_lora)
