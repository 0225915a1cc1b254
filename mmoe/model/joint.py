"""The joint model: vision tower -> projector -> splice -> Hugging Face causal LM.

The LLM stays an unmodified Hugging Face model. Its MoE blocks are found by type when the joint is
built; a forward pre-hook on the LLM sets their ``RoutingContext`` for every call of the LLM (see
``mmoe.moe.core.context``), from facts the joint announces before it calls the LLM or ``generate``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Literal

import torch
from PIL import Image
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mmoe.config.schema import MMoEConfig
from mmoe.model.output import MMoEOutput, SplicedInputs
from mmoe.model.splice import IGNORE_INDEX, images_per_sample, mask_image_labels, scatter_visual_tokens
from mmoe.model.vision.base import VisionTower
from mmoe.moe.core.context import RoutingContext, RoutingRecords
from mmoe.moe.core.layer import MoEBlock
from mmoe.moe.methods.parrot import PromptContext


@dataclass
class _AnnouncedCall:
    """What the joint tells its pre-hook about the LLM call(s) it is about to make."""

    mode: Literal["forward", "generate"]
    token_mask: torch.Tensor
    modality_ids: torch.Tensor
    language_ids: torch.Tensor | None
    records: RoutingRecords | None
    expand: int = 1


class RoutingContractError(RuntimeError):
    """The LLM was called with a batch the joint model did not announce."""


class MMoEModel(nn.Module):
    def __init__(
        self,
        config: MMoEConfig,
        vision_tower: VisionTower,
        projector: nn.Module,
        llm: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
    ) -> None:
        super().__init__()
        self.config = config
        self.vision_tower = vision_tower
        self.projector = projector
        self.llm = llm
        self.tokenizer = tokenizer
        self.image_token_id = tokenizer.convert_tokens_to_ids(config.model.tokenizer.image_token)
        self._blocks = [block for block in llm.modules() if isinstance(block, MoEBlock)]
        self._stat_names = {block: f"llm.{name}" for name, block in llm.named_modules() if isinstance(block, MoEBlock)}
        self._stat_names[projector] = "projector"
        moe = config.model.moe
        self._loss_reduce = moe.losses.reduce if moe is not None else "mean"
        self._announced: _AnnouncedCall | None = None
        # transformers 5 names the KV-cache argument ``cache`` (earlier releases: ``past_key_values``)
        self._cache_arg = "cache" if "cache" in inspect.signature(llm.forward).parameters else "past_key_values"
        llm.register_forward_pre_hook(self._set_routing, with_kwargs=True)
        llm.register_forward_hook(self._end_routing)

    # ----------------------------------------------------------------- structure
    @property
    def tokens_per_image(self) -> int:
        return self.vision_tower.num_tokens

    @property
    def device(self) -> torch.device:
        return next(self.llm.parameters()).device

    def moe_blocks(self) -> list[MoEBlock]:
        """The MoE blocks injected into the LLM, found by type when the model was built."""
        return list(self._blocks)

    # ----------------------------------------------------------------- routing contract
    def _set_routing(self, llm: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        call = self._announced
        ctx = None if call is None else self._context_for(call, kwargs)
        for block in self._blocks:
            block.routing_context = ctx

    def _context_for(self, call: _AnnouncedCall, kwargs: dict[str, Any]) -> RoutingContext:
        if call.mode == "forward":
            return RoutingContext(call.token_mask, call.modality_ids, call.language_ids, "forward", call.records)
        cache = kwargs.get(self._cache_arg)
        past = cache.get_seq_length() if cache is not None else 0
        new = kwargs["inputs_embeds"] if kwargs.get("inputs_embeds") is not None else kwargs["input_ids"]
        rows, length = new.shape[:2]
        if past == 0:
            announced = (call.token_mask.shape[0] * call.expand, call.token_mask.shape[1])
            if (rows, length) != announced:
                raise RoutingContractError(
                    f"generate's prefill got inputs of [{rows}, {length}] tokens, not the announced prompt "
                    f"{tuple(call.token_mask.shape)} with each sample repeated {call.expand}x "
                    "(max(num_beams, num_return_sequences))"
                )

            def expand(t: torch.Tensor | None) -> torch.Tensor | None:
                return None if t is None else t.repeat_interleave(call.expand, dim=0)

            return RoutingContext(expand(call.token_mask), expand(call.modality_ids), expand(call.language_ids), "prefill", call.records)
        # a decode step: the tokens generated last step, real text tokens of every row
        mask = torch.ones(rows, length, dtype=torch.bool, device=new.device)
        return RoutingContext(mask, torch.zeros(rows, length, dtype=torch.long, device=new.device), None, "decode", None)

    def _end_routing(self, llm: nn.Module, args: tuple, output: Any) -> None:
        """Clear every block's context; gradient checkpointing keeps it for backward's recomputation."""
        recompute = self.training and torch.is_grad_enabled() and llm.is_activation_checkpointing
        for block in self._blocks:
            ctx = block.routing_context
            block.routing_context = ctx.for_recompute() if recompute and ctx is not None else None

    def _announce(self, call: _AnnouncedCall | None) -> None:
        self._announced = call

    # ----------------------------------------------------------------- splice
    def encode_images(
        self, pixel_values: torch.Tensor, prompt: PromptContext | None = None, records: RoutingRecords | None = None
    ) -> torch.Tensor:
        """Vision tower then projector: ``[N,3,H,W]`` -> ``[N, T, D_llm]``."""
        return self.projector(self.vision_tower(pixel_values), prompt, records)

    def _blank_pixels(self) -> torch.Tensor:
        return self.vision_tower.preprocess([Image.new("RGB", (8, 8))]).to(self.device)

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        records: RoutingRecords | None = None,
        language_ids: torch.Tensor | None = None,
    ) -> SplicedInputs:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        image_mask = input_ids == self.image_token_id
        num_images = 0 if pixel_values is None else pixel_values.shape[0]
        per_sample = images_per_sample(image_mask, self.tokens_per_image, num_images)
        embed = self.llm.get_input_embeddings()
        embeds = embed(input_ids.masked_fill(image_mask, 0))
        prompt_mask = attention_mask.bool() & ~image_mask
        if labels is not None:
            prompt_mask &= labels == IGNORE_INDEX
        if num_images:
            sample_of_image = torch.repeat_interleave(torch.arange(len(per_sample), device=embeds.device), per_sample)
            language = language_ids[sample_of_image, 0] if language_ids is not None else None
            prompt = PromptContext(embeds=embeds, mask=prompt_mask, sample_of_image=sample_of_image, language_of_image=language)
            embeds = scatter_visual_tokens(embeds, image_mask, self.encode_images(pixel_values, prompt, records))
        elif self.training:
            # Run a blank image, as an image of sample 0 with that sample's prompt, so every rank
            # calls the same modules in the same order, forward and backward, whether it has images
            # or not: ZeRO-3 partitions even frozen parameters and replays one fetch order on every
            # rank; a rank that skips a module, or reaches it in another order, hangs the others.
            # It records no router statistics.
            sample_zero = torch.zeros(1, dtype=torch.long, device=embeds.device)
            blank = PromptContext(embeds=embeds, mask=prompt_mask, sample_of_image=sample_zero)
            embeds = embeds + 0.0 * self.encode_images(self._blank_pixels(), blank).sum()
        if labels is not None:
            labels = mask_image_labels(labels, image_mask)
        return SplicedInputs(embeds, attention_mask, image_mask.long(), labels)

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        language_ids: torch.Tensor | None = None,
        records: RoutingRecords | None = None,
        routing_positions: torch.Tensor | None = None,
        **llm_kwargs,
    ) -> MMoEOutput:
        """``records``: this call's sink, when the caller wants different options (``mmoe analyze``
        asks for entropy histograms); by default a fresh one. Its losses and statistics are returned.
        ``routing_positions`` (``[B]``, optional): one position per sample at which every router's
        expert distribution is returned in ``sample_routing`` (RoMA reads it)."""
        records = records if records is not None else RoutingRecords(reduce=self._loss_reduce)
        if routing_positions is not None:
            records.sample_positions = routing_positions
        spliced = self.embed_inputs(input_ids, attention_mask, pixel_values, labels, records, language_ids)
        self._announce(_AnnouncedCall("forward", spliced.attention_mask.bool(), spliced.modality_ids, language_ids, records))
        try:
            out = self.llm(
                inputs_embeds=spliced.inputs_embeds,
                attention_mask=spliced.attention_mask,
                labels=spliced.labels,
                **llm_kwargs,
            )
        finally:
            self._announce(None)
        aux = records.aux_losses()
        loss = out.loss
        if loss is not None and aux:
            loss = loss + sum(aux.values())
        return MMoEOutput(
            loss=loss,
            lm_loss=out.loss,
            logits=out.logits,
            aux_losses=aux,
            router_stats=records.router_stats(self._stat_names),
            sample_routing=records.sample_routing(self._stat_names),
            hidden_states=getattr(out, "hidden_states", None),
            past_key_values=getattr(out, self._cache_arg, None),
        )

    def _expansion(self, generate_kwargs: dict[str, Any]) -> int:
        """Rows per sample that ``generate`` will make: HF expands by max(num_beams, num_return_sequences)."""
        config = generate_kwargs.get("generation_config") or self.llm.generation_config
        beams = generate_kwargs.get("num_beams", config.num_beams) or 1
        returns = generate_kwargs.get("num_return_sequences", config.num_return_sequences) or 1
        return max(beams, returns)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        records: RoutingRecords | None = None,
        **generate_kwargs,
    ) -> torch.Tensor:
        """Generate with the LLM's KV cache; returns only the new tokens. Pad prompts on the left.

        ``records``, when given, receives the router statistics of the projector and of the prefill
        (decode steps record nothing).
        """
        spliced = self.embed_inputs(input_ids, attention_mask, pixel_values, records=records)
        generate_kwargs.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        generate_kwargs.setdefault("eos_token_id", self.tokenizer.eos_token_id)
        call = _AnnouncedCall(
            "generate", spliced.attention_mask.bool(), spliced.modality_ids, None, records, self._expansion(generate_kwargs)
        )
        self._announce(call)
        try:
            return self.llm.generate(inputs_embeds=spliced.inputs_embeds, attention_mask=spliced.attention_mask, **generate_kwargs)
        finally:
            self._announce(None)
