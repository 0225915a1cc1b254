"""Config of the training methods that act on routers and experts: RoMA, Router Lens, CEFT.

``train.roma`` adds RoMA's routing-manifold term to the loss, ``train.router_lens`` counts expert
activations on the training (probe) set after a router-only phase and writes the experts it selects,
and ``train.stage.experts_from`` (CEFT) trains only the experts such a file names. The cross-section
rules (what each method needs of ``model.moe`` and of the stage) are in ``method_errors``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mmoe.config.base import StrictModel
from mmoe.languages import LANGUAGES


class RoMAConfig(StrictModel):
    """RoMA (Li, Li, Zhou, ICLR 2026): ``L = L_CE + coef * sum_j W_ij ||r_i - r_j||^2`` over the k nearest
    successful neighbours ``j`` of sample ``i`` in a task-embedding space.

    ``k``: neighbours (paper default 3). ``layers``: routing weights of the last N MoE layers (paper: 5).
    ``sigma``: width of the Gaussian similarity ``exp(-d^2 / 2 sigma^2)``; None uses the median
    neighbour distance (the paper does not give it). ``embedding``: ``prompt_states`` (the LLM's last
    hidden states averaged over the prompt's text tokens; nothing to download) or
    ``sentence_transformers`` with ``embedding_model`` (hub id or local path). ``success``:
    ``exact_match`` (every answer token is the model's greedy teacher-forced prediction: the paper's
    ``f(x_j) = y_j``) or ``loss_quantile`` (the sample's answer loss is at most the ``success_quantile``
    quantile of the training set's losses: for models that answer nothing exactly yet).
    """

    coef: float = Field(1.0, gt=0)
    k: int = Field(3, gt=0)
    layers: int = Field(5, gt=0)
    sigma: float | None = Field(None, gt=0)
    embedding: Literal["prompt_states", "sentence_transformers"] = "prompt_states"
    embedding_model: str | None = None
    success: Literal["exact_match", "loss_quantile"] = "exact_match"
    success_quantile: float = Field(0.5, gt=0, le=1)

    @model_validator(mode="after")
    def _embedding_model(self) -> "RoMAConfig":
        if (self.embedding == "sentence_transformers") != (self.embedding_model is not None):
            raise ValueError(
                "train.roma.embedding_model names the sentence-transformers model (hub id or local path): set it "
                "exactly when train.roma.embedding=sentence_transformers"
            )
        return self


class RouterLensConfig(StrictModel):
    """Router Lens (Bai et al. 2025): after a router-only phase, count each expert's top-k activations on
    the training (probe) set and select, per MoE layer, the ``top_experts`` experts activated most.

    ``property``: which tokens count: ``all`` (the paper: every token of a context-dependent probe set),
    ``language`` (the tokens of ``language``) or ``modality`` (the ``modality`` expert group of MoMa).
    ``output``: the selection file (relative paths are under ``train.output_dir``), read by a later
    stage's ``train.stage.experts_from``.
    """

    top_experts: int = Field(8, gt=0)
    property: Literal["all", "language", "modality"] = "all"
    language: str | None = None
    modality: Literal["text", "image"] | None = None
    output: str = "router_lens.json"

    @model_validator(mode="after")
    def _property(self) -> "RouterLensConfig":
        if (self.property == "language") != (self.language is not None):
            raise ValueError("train.router_lens.language is set exactly when train.router_lens.property=language")
        if self.language is not None and self.language not in LANGUAGES:
            raise ValueError(f"train.router_lens.language={self.language!r} is not a known language ({', '.join(LANGUAGES)})")
        if (self.property == "modality") != (self.modality is not None):
            raise ValueError("train.router_lens.modality is set exactly when train.router_lens.property=modality")
        return self

    def statistic(self, group: str) -> str | None:
        """The router-statistics key counted in expert group ``group`` (``""``: no groups), or None to skip it."""
        if self.property == "modality":
            return "tokens_per_expert" if group == self.modality else None
        return "tokens_per_expert" if self.property == "all" else f"tokens_per_expert/{self.language}"


def method_errors(moe, train) -> list[str]:
    """Why the recipe's RoMA / Router Lens / CEFT settings make no sense with its ``model.moe`` and
    stage (``moe``: a ``MoEConfig`` or None; ``train``: a ``TrainConfig``); empty when they do."""
    errors: list[str] = []
    stage = train.stage
    routers_only = list(stage.trainable) == ["routers"]
    for key, method in (("train.roma", train.roma), ("train.router_lens", train.router_lens)):
        if method is None:
            continue
        if moe is None or moe.router.type == "none":
            errors.append(f"{key} acts on the routers of model.moe, and the recipe has no routed MoE (model.moe with a router)")
        if not routers_only:
            errors.append(f"{key} trains only the routers (the experts stay as they are): set train.stage.trainable=[routers]")
    lens = train.router_lens
    if lens is not None and moe is not None and moe.router.type != "none":
        if moe.router.type == "soft":
            errors.append("train.router_lens counts top-k activations, but soft routing activates every expert for every token")
        if moe.router.type == "expert_choice" and lens.property != "language":
            errors.append(
                "train.router_lens: expert choice gives every expert the same number of tokens, so counting them "
                "selects nothing; use token-choice routing (model.moe.router.type=top_k) or property=language"
            )
        if lens.property == "modality" and moe.groups is None:
            errors.append(
                "train.router_lens.property=modality selects inside MoMa's modality expert groups: set model.moe.groups "
                "(without groups every expert serves every modality)"
            )
        fewest = min(moe.expert_counts().values())
        if lens.top_experts > fewest:
            errors.append(f"train.router_lens.top_experts={lens.top_experts} exceeds the {fewest} experts of an expert group")
    if stage.experts_from is not None:
        if moe is None:
            errors.append("train.stage.experts_from selects experts of model.moe, and the recipe has none")
        elif moe.attention_lora is not None:
            errors.append(
                "train.stage.experts_from trains selected experts only, but model.moe.attention_lora is a dense adapter "
                "in the experts group that no selection names: drop model.moe.attention_lora"
            )
        if "experts" not in stage.trainable:
            errors.append("train.stage.experts_from names experts to train: add 'experts' to train.stage.trainable")
        if train.weight_decay > 0:
            errors.append(
                "train.stage.experts_from masks the gradients of unselected experts, but AdamW's decoupled weight "
                f"decay (train.weight_decay={train.weight_decay}) would still change them: set train.weight_decay=0"
            )
    return errors
