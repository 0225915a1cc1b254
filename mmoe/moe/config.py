"""Config sections of the expert layers: ``model.moe`` (LLM MLP blocks) and ``model.projector.moe`` (Parrot).

Cross-field rules live here so a bad recipe fails at load time with the offending keys named.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from mmoe.config.base import StrictModel

MLP_TARGETS = ("gate_proj", "up_proj", "down_proj")
ATTENTION_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
# HF ``model_type``s whose decoder layers hold a gate/up/down ``mlp`` that the MoE block can replace.
SUPPORTED_ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text")
# HF ``model_type``s whose sparse MoE blocks PERFT wraps (their ``mlp.gate`` returns logits, top-k weights, indices).
PERFT_ARCHITECTURES = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe")
# HF ``model_type``s whose sparse MoE blocks ``experts.ffn.init: native`` adopts as mmoe MoE layers
# (softmax top-k gate + stacked gate_up/down experts, no shared expert).
NATIVE_ARCHITECTURES = ("mixtral", "qwen3_moe", "olmoe")
NOT_NATIVE = {
    "qwen2_moe": "its sparse-MoE blocks add a sigmoid-gated shared expert to the routed ones, which an mmoe MoE "
    "layer does not model; PERFT (model.moe.perft) wraps Qwen2-MoE blocks as they are",
}


def unsupported_architecture(model_type: str) -> str:
    return (
        f"MoE injection does not support LLM architecture '{model_type}'; supported (gate/up/down MLP blocks): "
        + ", ".join(SUPPORTED_ARCHITECTURES)
        + ". An LLM that is itself a mixture of experts trains as it is, its own experts and gates in the 'llm' "
        "group; to add routed PEFT experts beside them use PERFT (model.moe.perft) on "
        + ", ".join(PERFT_ARCHITECTURES)
        + "; to train its own routers or experts as mmoe's 'routers' / 'experts' (RoMA, Router Lens, CEFT) adopt "
        "them with moe.experts.ffn.init=native on " + ", ".join(NATIVE_ARCHITECTURES)
    )


def native_needs_moe_llm(model_type: str) -> str:
    why = NOT_NATIVE.get(model_type, "it is not an MoE LLM whose sparse-MoE blocks mmoe can adopt")
    return (
        f"moe.experts.ffn.init=native adopts an MoE LLM's own sparse-MoE blocks, but LLM architecture "
        f"'{model_type}' is not one it adopts ({', '.join(NATIVE_ARCHITECTURES)}): {why}. For a dense LLM use "
        "ffn.init=upcycle or random"
    )


def perft_needs_moe_llm(model_type: str) -> str:
    return (
        f"model.moe.perft adds routed PEFT experts beside an MoE LLM's own experts, but LLM architecture "
        f"'{model_type}' is not one PERFT wraps (" + ", ".join(PERFT_ARCHITECTURES) + "); for a dense LLM "
        "drop moe.perft and use moe.experts (LLaVA-MoLE LoRA experts or FFN experts)"
    )


def architecture_error(model_type: str, cfg: "MoEConfig") -> str | None:
    """Why ``cfg`` cannot go into an LLM of ``model_type`` (None: it can)."""
    if cfg.perft is not None:
        return None if model_type in PERFT_ARCHITECTURES else perft_needs_moe_llm(model_type)
    if cfg.adopts_native:
        return None if model_type in NATIVE_ARCHITECTURES else native_needs_moe_llm(model_type)
    return None if model_type in SUPPORTED_ARCHITECTURES else unsupported_architecture(model_type)


def renormalization_error(top_k: int) -> str:
    return (
        f"renormalize=true with top_k={top_k}: renormalising one chosen expert makes its weight exactly 1, so "
        "the LM loss sends the router no gradient; top-1 uses the gate probability (Switch). Renormalise only with top_k >= 2"
    )


class LoRAConfig(StrictModel):
    """Low-rank deltas ``(alpha / rank) * B A dropout(x)`` on frozen base linears."""

    rank: int = Field(8, gt=0)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    targets: list[Literal["gate_proj", "up_proj", "down_proj"]] = list(MLP_TARGETS)

    @model_validator(mode="after")
    def _targets(self) -> "LoRAConfig":
        if not self.targets or len(set(self.targets)) != len(self.targets):
            raise ValueError(f"lora.targets must be a non-empty list without repeats, got {self.targets}")
        return self


class AttentionLoRAConfig(StrictModel):
    """A plain (unrouted) LoRA on the attention projections, as LLaVA-1.5's LoRA baseline has."""

    rank: int = Field(8, gt=0)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    targets: list[Literal["q_proj", "k_proj", "v_proj", "o_proj"]] = list(ATTENTION_TARGETS)


class FFNExpertConfig(StrictModel):
    """Full MLP experts. ``glu``: gate/up/down (SwiGLU with silu); ``mlp``: two linears (GELU by default).

    ``init: upcycle`` copies the dense FFN being replaced into every expert (needs ``kind: glu`` and the
    dense intermediate size), then adds ``noise`` x (per-matrix std) Gaussian noise so experts can diverge.
    ``init: split`` partitions the dense FFN's intermediate neurons into ``num_experts`` disjoint experts
    (FactorLLM; ``intermediate_size`` is then the dense size / num_experts): all experts together are
    the dense FFN. ``init: native`` adopts the sparse-MoE block an MoE LLM already has (Mixtral, OLMoE,
    Qwen3-MoE): its experts become the bank and its gate the router, the same function (see
    ``mmoe.moe.integration.native``); ``moe.experts.num_experts``, ``moe.router.top_k`` and
    ``moe.router.renormalize`` state the model's own values and are checked against it.
    ``activation`` defaults to the dense FFN's own activation when upcycling or splitting (the native
    experts' when adopting), else silu (glu) / gelu (mlp).
    """

    kind: Literal["glu", "mlp"] = "glu"
    activation: Literal["silu", "gelu", "gelu_tanh", "relu"] | None = None
    intermediate_size: int | None = Field(None, gt=0)
    init: Literal["upcycle", "split", "random", "native"] = "upcycle"
    noise: float = Field(0.0, ge=0.0)
    init_std: float = Field(0.02, gt=0)

    @model_validator(mode="after")
    def _upcycle(self) -> "FFNExpertConfig":
        if self.init in ("upcycle", "split", "native") and self.kind != "glu":
            raise ValueError(f"ffn.init={self.init} copies a gate/up/down FFN and needs ffn.kind=glu (or use init=random)")
        return self


class ExpertsConfig(StrictModel):
    """What an expert is. ``num_experts`` is set here, or per modality in ``moe.groups`` (not both)."""

    type: Literal["lora", "ffn"] = "lora"
    num_experts: int | None = Field(None, gt=0)
    num_null_experts: int = Field(0, ge=0)
    lora: LoRAConfig = LoRAConfig()
    ffn: FFNExpertConfig = FFNExpertConfig()


class DynMoLEConfig(StrictModel):
    """DynMoLE's hybrid routing (Li et al. 2025): per token, every expert weighted by its probability
    when the normalised router entropy exceeds ``entropy_threshold`` (>= 1 never), else top-p: the
    experts in descending order while their cumulative probability is <= ``top_p`` (the one that
    crosses is left out), at least ``keep_top_k`` of them. Weights are the probabilities, not
    renormalised. ``entropy_type``/``entropy_index``: Tsallis q (or Renyi alpha), ``entropy_eps``
    added to p. Defaults are the reference code's (mikecovlee/DynMoLE).
    """

    top_p: float = Field(0.75, gt=0.0, le=1.0)
    keep_top_k: int = Field(2, ge=1)
    entropy_threshold: float = Field(0.9, ge=0.0)
    entropy_type: Literal["tsallis", "renyi"] = "tsallis"
    entropy_index: float = Field(1.1, gt=0.0, le=2.0)
    entropy_eps: float = Field(1e-5, ge=0.0)


class MoRConfig(StrictModel):
    """Mixture of Routers (Zhang et al. 2025): ``num_routers`` sub-routers whose expert distributions a
    learnable main router mixes, ``p = sum_s g_s softmax(z_s)`` (``combine: probs``) or
    ``p = softmax(sum_s g_s z_s)`` (``combine: logits``), ``g = softmax(main x)``; experts are then
    chosen from ``p`` by ``router.top_k`` / ``router.renormalize``. ``router_balance``: coefficient
    of a Switch balance loss over the main router's choice of sub-routers (0: off).
    """

    num_routers: int = Field(4, ge=2)
    combine: Literal["probs", "logits"] = "probs"
    router_balance: float = Field(0.0, ge=0.0)


class GWConfig(StrictModel):
    """GW-MoE (Wu et al. 2024), training only: a token whose router entropy is >= ``threshold`` goes to
    every expert, weighted by its router distribution; at inference plain top-k (no extra cost).
    ``normalized``: the threshold is on entropy / ln(E) (0..1) rather than in nats (the reference's
    1.6-1.8 for 8 experts). ``max_slots``: at most this many broadcast tokens per sequence, the
    first ones in position order (the reference's per-sequence cap); None: no cap.
    """

    threshold: float = Field(0.9, gt=0.0)
    normalized: bool = True
    max_slots: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _threshold(self) -> "GWConfig":
        if self.normalized and self.threshold > 1.0:
            raise ValueError(
                f"moe.router.gw.threshold={self.threshold} with normalized=true: normalised entropy never exceeds 1, "
                "so no token would be broadcast; use a threshold in (0, 1] or normalized=false (nats)"
            )
        return self


ROUTERS_WITHOUT_GW = {
    "dynmole": "DynMoLE already sends high-entropy tokens to every expert (router.dynmole.entropy_threshold)",
    "expert_choice": "expert choice has experts pick tokens, so there is no per-token top-k to widen",
    "soft": "soft routing already sends every token to every expert",
    "none": "a single expert has nothing to broadcast to",
}


class RouterConfig(StrictModel):
    """Which experts each token uses.

    ``top_k``: token choice (each token picks ``k``; causal). Top-1 weights the chosen expert by its
    gate probability (Switch), so the LM loss trains the router; ``renormalize`` (k >= 2 only)
    rescales the k chosen weights to sum to 1 (Mixtral). ``expert_choice``: each expert picks its
    ``ceil(capacity_factor * T / E)`` best tokens of the batch (non-causal; MoMa): at inference it
    needs trained aux routers, or ``causal_fallback`` (each token takes its top-round(capacity_factor)
    experts by score). ``soft``: every expert, weighted by the scores. ``none``: a single expert and
    no router (plain LoRA / dense FFN). ``dynmole``: DynMoLE's entropy-switched soft / top-p routing
    (settings in ``dynmole``). ``mor``: Mixture of Routers, sub-routers mixed by a main router, then
    ``top_k`` (settings in ``mor``). ``gw`` (with ``top_k`` or ``mor``): GW-MoE's broadcast of uncertain
    tokens to every expert in training. Scores are computed in float32. ``jitter`` multiplies router
    inputs by U(1-j, 1+j) in training. ``init_std``: Gaussian init of the gate; None is nn.Linear's
    kaiming-uniform (a = sqrt(5)), DynMoLE's router init (``router_init_range`` 5).
    """

    type: Literal["top_k", "expert_choice", "soft", "none", "dynmole", "mor"] = "top_k"
    top_k: int = Field(1, gt=0)
    score: Literal["softmax", "sigmoid"] = "softmax"
    renormalize: bool = False
    jitter: float = Field(0.0, ge=0.0, lt=1.0)
    capacity_factor: float = Field(1.0, gt=0)
    causal_fallback: bool = False
    init_std: float | None = Field(0.02, gt=0)
    dynmole: DynMoLEConfig = DynMoLEConfig()
    mor: MoRConfig = MoRConfig()
    gw: GWConfig | None = None

    @model_validator(mode="after")
    def _renormalize(self) -> "RouterConfig":
        if self.type in ("top_k", "mor") and self.renormalize and self.top_k < 2:
            raise ValueError(f"moe.router: {renormalization_error(self.top_k)}")
        return self

    @model_validator(mode="after")
    def _methods(self) -> "RouterConfig":
        for method, defaults in (("dynmole", DynMoLEConfig()), ("mor", MoRConfig())):
            if getattr(self, method) != defaults and self.type != method:
                raise ValueError(f"moe.router.{method} is set but moe.router.type={self.type}; set moe.router.type={method}")
        if self.type in ("dynmole", "mor") and self.score != "softmax":
            raise ValueError(f"moe.router.type={self.type} mixes and routes by softmax distributions: set score=softmax")
        if self.type == "dynmole":
            if self.renormalize:
                raise ValueError("moe.router.type=dynmole keeps the unrenormalised probabilities as weights; drop renormalize")
        if self.gw is not None and self.type in ROUTERS_WITHOUT_GW:
            raise ValueError(f"moe.router.gw with router.type={self.type} makes no sense: {ROUTERS_WITHOUT_GW[self.type]}")
        return self


class EntropyLossConfig(StrictModel):
    """Mean normalised router entropy as a loss (DynMoLE; MoE-PEFT's MixLoRA): pushes routers toward
    peaked distributions. Tsallis with q = ``index`` (or Renyi with alpha = ``index``), ``eps`` added to p."""

    coef: float = Field(0.01, ge=0.0)
    type: Literal["tsallis", "renyi"] = "tsallis"
    index: float = Field(1.1, gt=0.0, le=2.0)
    eps: float = Field(1e-5, ge=0.0)


class LossesConfig(StrictModel):
    """Router losses; a coefficient of 0 turns one off. Each is reported by name in ``aux_losses``.

    ``balance``: Switch load balance ``E * sum_i f_i P_i`` (1.0 at perfect balance), with ``f_i`` the
    share of routing assignments (``switch``) or of top-1 choices (``gshard``) that expert i received,
    or its mean combine weight (``masked``: DynMoLE, differentiable through the masked weights).
    ``z_loss``: ST-MoE router z-loss ``mean(logsumexp(logits)^2)``.
    ``entropy``: the router-entropy loss (DynMoLE), off when absent.
    ``reduce``: how each loss combines over MoE layers (and modality groups): ``mean`` as HF Mixtral
    and Switch Transformers do, or ``sum`` as MoE-LLaVA does (the value then grows with depth).
    """

    balance: float = Field(0.0, ge=0.0)
    balance_type: Literal["switch", "gshard", "masked"] = "switch"
    z_loss: float = Field(0.0, ge=0.0)
    entropy: EntropyLossConfig | None = None
    reduce: Literal["mean", "sum"] = "mean"


class AuxRouterConfig(StrictModel):
    """MoMa's causal auxiliary routers ``sigmoid(silu(x W1) W2)``, trained with BCE in a later phase."""

    hidden_ratio: float = Field(0.5, gt=0)
    bce_coef: float = Field(1.0, ge=0.0)
    threshold: float = Field(0.5, gt=0.0, lt=1.0)


class ModalityGroupsConfig(StrictModel):
    """MoMa: a text group and an image group of experts; a token only reaches its modality's group."""

    text: int = Field(4, ge=0)
    image: int = Field(4, ge=0)
    aux_router: AuxRouterConfig | None = None

    @model_validator(mode="after")
    def _counts(self) -> "ModalityGroupsConfig":
        if self.text < 1:
            raise ValueError("moe.groups.text is 0: every text token needs a text expert; set text >= 1")
        if self.image < 1:
            raise ValueError(
                "moe.groups.image is 0 but the model takes images: image tokens would have no expert group; "
                "set image >= 1 (or drop moe.groups)"
            )
        return self


class AdaMoEConfig(StrictModel):
    """AdaMoE (Zeng et al. 2024): null experts (``experts.num_null_experts``) join the routing set and
    ``router.top_k`` grows, so a token uses between 0 and k true experts.

    ``renormalize``: the k picks' weights are renormalised over the picked *true* experts only (the
    released code); a token that picked only null experts gets a zero output (only the residual).
    ``balance``: coefficient of AdaMoE's load balance ``(n + m) * sum_i f_i P_i`` over the n true and m
    null experts, the null experts' counts replaced by their mean (``null_bucket``: one averaged bucket,
    so identical nulls are not balanced against each other). 0.001 and a per-layer sum
    (``losses.reduce: sum``) in the released LLaMA code.
    """

    renormalize: bool = True
    balance: float = Field(0.001, ge=0.0)
    null_bucket: bool = True


class FactorLLMConfig(StrictModel):
    """FactorLLM (Zhao et al. 2024): the dense FFN split into experts (``experts.ffn.init: split``), a
    biased linear router picking ``router.top_k`` experts with hard 0/1 weights scaled by E/k, and the
    prior-approximate loss against the frozen dense FFN (the teacher).

    ``grouping``: which neurons go to which expert: ``contiguous`` slices (the released code) or a
    seeded random ``permuted`` partition. ``prior_approx``: coefficient of KL(router ‖ softmax(Y)),
    Y the one-hot of the k experts that best approximate the teacher (0.05). ``balance``: coefficient of
    ``mean(onehot_topk(p) * p)`` (0.01).
    """

    grouping: Literal["contiguous", "permuted"] = "contiguous"
    seed: int = 0
    prior_approx: float = Field(0.05, ge=0.0)
    balance: float = Field(0.01, ge=0.0)


class PERFTConfig(StrictModel):
    """PERFT (Liu et al. 2024): PEFT experts beside the frozen experts of an MoE LLM, acting on the MoE
    block's input ``h``: ``y' = y + sum_j w_j Delta_j(h)``.

    ``variant``: ``R`` routed (its own router, ``moe.router``, over ``moe.experts.num_experts`` PEFT
    experts, balanced by ``moe.losses``); ``E`` one PEFT expert per base expert, weighted by the frozen
    base router's own top-k weights; ``D`` ``moe.experts.num_experts`` always-on experts summed; ``S``
    one always-on expert. ``adapter``: ``lora`` ``Delta(h) = (alpha / rank) B A dropout(h)``, or
    ``parallel`` ``Delta(h) = W2 silu(W1 h)`` with ``rank`` hidden units (unscaled; ``dropout`` and
    ``alpha`` are the LoRA adapter's).
    """

    variant: Literal["R", "E", "D", "S"] = "R"
    adapter: Literal["lora", "parallel"] = "lora"
    rank: int = Field(8, gt=0)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


def _adamoe_errors(cfg: "MoEConfig") -> list[str]:
    if cfg.adamoe is None:
        return []
    errors = []
    if cfg.experts.num_null_experts < 1:
        errors.append("moe.adamoe routes to null experts: set moe.experts.num_null_experts >= 1")
    if cfg.router.type != "top_k":
        errors.append(
            f"moe.adamoe with moe.router.type={cfg.router.type}: null experts let a *token* choose fewer true "
            "experts, which needs token-choice routing (top_k); in expert choice a null expert would only take capacity"
        )
    if cfg.adamoe.renormalize and cfg.router.renormalize:
        errors.append("moe.adamoe.renormalize already renormalises over the picked true experts: set moe.router.renormalize=false")
    if cfg.adamoe.renormalize and cfg.router.top_k < 2:
        errors.append(f"moe.adamoe.renormalize with moe.router.top_k={cfg.router.top_k}: {renormalization_error(cfg.router.top_k)}")
    if cfg.adamoe.balance > 0 and cfg.losses.balance > 0:
        errors.append(
            "moe.adamoe.balance and moe.losses.balance both balance the router; the Switch loss balances every null "
            "expert on its own, which AdaMoE's null bucket replaces: set one of them to 0"
        )
    return errors


def _factorllm_errors(cfg: "MoEConfig") -> list[str]:
    split = cfg.experts.type == "ffn" and cfg.experts.ffn.init == "split"
    if cfg.factorllm is None:
        return ["moe.experts.ffn.init=split is FactorLLM's factorisation: configure moe.factorllm"] if split else []
    errors = []
    if split and (cfg.experts.ffn.activation is not None or cfg.experts.ffn.intermediate_size is not None):
        errors.append(
            "moe.experts.ffn.init=split makes each expert a slice of the dense FFN, with its activation and "
            "intermediate size / num_experts neurons: leave ffn.activation and ffn.intermediate_size unset"
        )
    if cfg.experts.type != "ffn" or cfg.experts.ffn.init != "split":
        errors.append("moe.factorllm splits the dense FFN into experts: set moe.experts.type=ffn and moe.experts.ffn.init=split")
    if cfg.router.type != "top_k" or cfg.router.renormalize:
        errors.append("moe.factorllm routes top-k with hard weights E/k: set moe.router.type=top_k and renormalize=false")
    if cfg.experts.num_null_experts or cfg.groups is not None or cfg.adamoe is not None:
        errors.append(
            "moe.factorllm's experts together are the dense FFN (all active: exactly the dense output); null experts, "
            "AdaMoE and modality groups (each group a copy of the same split) break that: drop them"
        )
    return errors


def _native_errors(cfg: "MoEConfig") -> list[str]:
    """What contradicts adopting the LLM's own sparse-MoE blocks (``experts.ffn.init: native``)."""
    ffn = cfg.experts.ffn
    if ffn.init != "native":
        return []
    where = "moe.experts.ffn.init=native adopts the LLM's own sparse-MoE blocks with their function unchanged"
    if cfg.experts.type != "ffn":
        return [f"{where}: their experts are full FFNs, set moe.experts.type=ffn"]
    errors = []
    if cfg.experts.num_experts is None:
        errors.append(f"{where}: state their expert count in moe.experts.num_experts (checked against the model)")
    changed = [key for key, value in (("activation", ffn.activation), ("intermediate_size", ffn.intermediate_size)) if value is not None]
    changed += ["noise"] if ffn.noise > 0 else []
    if changed:
        errors.append(f"{where}: moe.experts.ffn.{', moe.experts.ffn.'.join(changed)} would change the native experts; leave unset")
    if cfg.router.type != "top_k" or cfg.router.score != "softmax" or cfg.router.gw is not None:
        errors.append(f"{where}: their gates route softmax top-k, set moe.router.type=top_k, score=softmax and no gw")
    if cfg.experts.num_null_experts or cfg.adamoe is not None or cfg.groups is not None or cfg.factorllm is not None or cfg.perft is not None:
        errors.append(
            f"{where}: null experts, AdaMoE, modality groups, FactorLLM and PERFT add or rebuild experts; drop them "
            "(PERFT wraps the native blocks itself)"
        )
    return errors


def _perft_errors(cfg: "MoEConfig") -> list[str]:
    p = cfg.perft
    if p is None:
        return []
    errors = []
    if cfg.groups is not None or cfg.factorllm is not None:
        errors.append(
            "moe.perft adds PEFT experts beside a pretrained MoE whose own router ignores modality; MoMa groups and "
            "FactorLLM replace a dense FFN instead: drop moe.groups / moe.factorllm"
        )
    if p.adapter == "parallel" and p.dropout > 0:
        errors.append("moe.perft.dropout applies to LoRA adapters; the parallel adapter has none: set it to 0")
    count = cfg.experts.num_experts
    if p.variant == "S" and count not in (None, 1):
        errors.append(f"moe.perft.variant=S has a single PEFT expert; moe.experts.num_experts={count} (use variant D or R)")
    if p.variant in ("R", "D") and (count is None or count < 2):
        errors.append(f"moe.perft.variant={p.variant} needs moe.experts.num_experts >= 2 PEFT experts (got {count}); one is variant S")
    if p.variant == "E" and count is not None:
        errors.append("moe.perft.variant=E has one PEFT expert per base expert: leave moe.experts.num_experts unset")
    if p.variant == "R" and cfg.router.type == "none":
        errors.append("moe.perft.variant=R routes its PEFT experts: set moe.router.type (e.g. top_k)")
    if p.variant != "R":
        unused = [key for key in ("router", "losses") if key in cfg.model_fields_set]
        unused += ["experts.num_null_experts"] if cfg.experts.num_null_experts else []
        unused += ["adamoe"] if cfg.adamoe is not None else []
        if unused:
            why = "routes with the frozen base router" if p.variant == "E" else "has no router (every PEFT expert is always on)"
            errors.append(f"moe.perft.variant={p.variant} {why}: moe.{', moe.'.join(unused)} would configure nothing; remove it")
    return errors


class MoEConfig(StrictModel):
    """MoE in the LLM's MLP blocks: LLaVA-MoLE (LoRA experts), MoMa (modality groups), upcycled FFN MoE,
    and the routing methods ``adamoe``, ``factorllm`` and ``perft`` (PEFT experts beside an MoE LLM's own).

    ``layers``: ``all``, ``every_other`` (0, 2, 4, ...: MoE-LLaVA) or a list of decoder-layer indices.
    ``dispatch``: ``fast`` (grouped products; LoRA experts computed wide or only where selected by
    the cost rule ``mmoe.moe.core.dispatch.sparse_lora_pays``), ``wide`` or ``sparse`` (that choice
    forced), or ``loop`` (per-expert reference).
    """

    layers: Literal["all", "every_other"] | list[int] = "all"
    experts: ExpertsConfig = ExpertsConfig()
    router: RouterConfig = RouterConfig()
    losses: LossesConfig = LossesConfig()
    groups: ModalityGroupsConfig | None = None
    attention_lora: AttentionLoRAConfig | None = None
    dispatch: Literal["fast", "wide", "sparse", "loop"] = "fast"
    adamoe: AdaMoEConfig | None = None
    factorllm: FactorLLMConfig | None = None
    perft: PERFTConfig | None = None

    @model_validator(mode="after")
    def _methods(self) -> "MoEConfig":
        errors = _native_errors(self) + _adamoe_errors(self) + _factorllm_errors(self) + _perft_errors(self)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "MoEConfig":
        if self.groups is not None and self.experts.num_experts is not None:
            raise ValueError("set expert counts in moe.groups.text / moe.groups.image, not moe.experts.num_experts")
        if isinstance(self.layers, list) and (not self.layers or min(self.layers) < 0 or len(set(self.layers)) != len(self.layers)):
            raise ValueError(f"moe.layers must be 'all', 'every_other' or distinct non-negative indices, got {self.layers}")
        null = self.experts.num_null_experts
        for group, count in self.expert_counts().items():
            where = f"moe.groups.{group}" if self.groups is not None else "moe.experts.num_experts"
            if self.router.type in ("top_k", "mor") and self.router.top_k > count + null:
                raise ValueError(
                    f"moe.router.top_k={self.router.top_k} exceeds the {count + null} experts of {where} "
                    f"({count} experts + {null} null); lower top_k or add experts"
                )
            if self.router.type == "none" and (count != 1 or null):
                raise ValueError(f"moe.router.type=none needs exactly one expert and no null experts ({where}={count})")
        self._check_routing_methods()
        if self.groups is not None and self.groups.aux_router is not None and self.router.type != "expert_choice":
            raise ValueError("moe.groups.aux_router imitates expert-choice routing: set moe.router.type=expert_choice")
        return self

    def _check_routing_methods(self) -> None:
        """DynMoLE / GW-MoE / MoR settings against the expert counts and the losses."""
        router, null = self.router, self.experts.num_null_experts
        for group, count in self.expert_counts().items():
            where = f"moe.groups.{group}" if self.groups is not None else "moe.experts.num_experts"
            if router.type == "dynmole" and router.dynmole.keep_top_k > count:
                raise ValueError(
                    f"moe.router.dynmole.keep_top_k={router.dynmole.keep_top_k} exceeds the {count} experts of {where}"
                )
            if router.type in ("dynmole", "mor") and count < 2:
                raise ValueError(f"moe.router.type={router.type} needs at least 2 experts ({where}={count})")
            if router.gw is not None and not router.gw.normalized and router.gw.threshold > math.log(count + null):
                raise ValueError(
                    f"moe.router.gw.threshold={router.gw.threshold} nats exceeds ln({count + null}) = "
                    f"{math.log(count + null):.3f}, the largest entropy over the experts of {where}: no token would be broadcast"
                )
        if router.type == "dynmole" and null:
            raise ValueError(
                "moe.router.type=dynmole with moe.experts.num_null_experts: DynMoLE already varies the experts per token "
                "(top-p, and every expert when uncertain) and would broadcast uncertain tokens to the null experts too; "
                "use null experts (AdaMoE) with router.type=top_k"
            )
        entropy = self.losses.entropy
        if router.type == "dynmole" and entropy is not None:
            mine = (router.dynmole.entropy_type, router.dynmole.entropy_index, router.dynmole.entropy_eps)
            if (entropy.type, entropy.index, entropy.eps) != mine:
                raise ValueError(
                    f"moe.losses.entropy (type={entropy.type}, index={entropy.index}, eps={entropy.eps}) differs from "
                    f"moe.router.dynmole (entropy_type={mine[0]}, entropy_index={mine[1]}, entropy_eps={mine[2]}): "
                    "DynMoLE's loss lowers the same entropy that decides its routing; set them equal"
                )
        if router.type == "mor" and router.mor.combine == "probs" and self.losses.z_loss > 0:
            raise ValueError(
                "moe.losses.z_loss with moe.router.mor.combine=probs: the mixed router has no logits of its own "
                "(its log-probabilities have logsumexp 0), so the z-loss would be 0; use combine=logits or z_loss=0"
            )

    @property
    def adopts_native(self) -> bool:
        """The LLM's own sparse-MoE blocks become mmoe MoE layers (``experts.ffn.init: native``)."""
        return self.experts.type == "ffn" and self.experts.ffn.init == "native"

    def expert_counts(self) -> dict[str, int]:
        """Routed experts per group (``all`` when there are no modality groups)."""
        if self.groups is not None:
            return {"text": self.groups.text, "image": self.groups.image}
        return {"all": self.experts.num_experts or 4}


class ParrotConfig(StrictModel):
    """Parrot's text-guided MoE after the MLP projector (needs ``vision.select_feature: cls_patch``).

    ``expert``: ``swiglu`` (released code) or ``silu_mlp`` (the paper's two-linear SiLU MLP).
    ``residual``: ``paper`` G = H + alpha*MoE(H), or ``code`` G = MoE(H) + alpha*H (released code, alpha 0.1).
    ``intermediate_size`` defaults to the LLM width. ``top_k`` (optional, beyond the paper) keeps only
    the k best experts per image (weights renormalised for k >= 2; top-1 keeps its gate probability).
    ``init_std``: Gaussian init of router and expert weights; None is nn.Linear's default, as the released
    code. ``bypass`` skips the MoE (stage 1 trains the MLP projector only).
    """

    num_experts: int = Field(6, gt=0)
    expert: Literal["swiglu", "silu_mlp"] = "swiglu"
    intermediate_size: int | None = Field(None, gt=0)
    residual: Literal["paper", "code"] = "code"
    alpha: float = 0.1
    top_k: int | None = Field(None, gt=0)
    bypass: bool = False
    dispatch: Literal["fast", "loop"] = "fast"
    init_std: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _top_k(self) -> "ParrotConfig":
        if self.top_k is not None and self.top_k > self.num_experts:
            raise ValueError(f"projector.moe.top_k={self.top_k} exceeds projector.moe.num_experts={self.num_experts}")
        return self
