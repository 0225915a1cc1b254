"""The joint model: vision tower -> projector -> splice -> Hugging Face causal LM.

The LLM stays an unmodified Hugging Face model; MoE adapters are injected as submodules and learn
per-forward facts (modality, padding) through a routing context handed to them here.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mmoe.config.schema import MMoEConfig
from mmoe.model.output import MMoEOutput, SplicedInputs
from mmoe.model.projector import PromptContext
from mmoe.model.splice import IGNORE_INDEX, images_per_sample, mask_image_labels, scatter_visual_tokens
from mmoe.model.vision.base import VisionTower
from mmoe.moe.context import RoutingContext, collect_aux_losses, collect_router_stats, routing_context


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
        self.moe_module_names: list[str] = []

    # ----------------------------------------------------------------- structure
    @property
    def tokens_per_image(self) -> int:
        return self.vision_tower.num_tokens

    @property
    def device(self) -> torch.device:
        return next(self.llm.parameters()).device

    def moe_modules(self) -> list[nn.Module]:
        return [self.get_submodule(name) for name in self.moe_module_names]

    # ----------------------------------------------------------------- splice
    def encode_images(self, pixel_values: torch.Tensor, prompt: PromptContext | None = None) -> torch.Tensor:
        """Vision tower then projector: ``[N,3,H,W]`` -> ``[N, T, D_llm]``."""
        return self.projector(self.vision_tower(pixel_values), prompt)

    def _blank_pixels(self) -> torch.Tensor:
        return self.vision_tower.preprocess([Image.new("RGB", (8, 8))]).to(self.device)

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> SplicedInputs:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        image_mask = input_ids == self.image_token_id
        num_images = 0 if pixel_values is None else pixel_values.shape[0]
        per_sample = images_per_sample(image_mask, self.tokens_per_image, num_images)
        embed = self.llm.get_input_embeddings()
        embeds = embed(input_ids.masked_fill(image_mask, 0))
        if num_images:
            prompt = None
            if getattr(self.projector, "needs_prompt", False):
                prompt_mask = attention_mask.bool() & ~image_mask
                if labels is not None:
                    prompt_mask &= labels == IGNORE_INDEX
                sample_of_image = torch.repeat_interleave(torch.arange(len(per_sample), device=embeds.device), per_sample)
                prompt = PromptContext(embeds=embeds[sample_of_image], mask=prompt_mask[sample_of_image])
            embeds = scatter_visual_tokens(embeds, image_mask, self.encode_images(pixel_values, prompt))
        elif self.training:
            # Run a blank image so every rank gathers and uses the same parameters each step: under
            # ZeRO-3 even frozen parameters are partitioned, and a rank that skips them would hang the others.
            embeds = embeds + 0.0 * self.encode_images(self._blank_pixels()).sum()
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
        **llm_kwargs,
    ) -> MMoEOutput:
        spliced = self.embed_inputs(input_ids, attention_mask, pixel_values, labels)
        ctx = RoutingContext(spliced.modality_ids, spliced.attention_mask.bool(), language_ids)
        modules = self.moe_modules()
        with routing_context(modules, ctx):
            out = self.llm(
                inputs_embeds=spliced.inputs_embeds,
                attention_mask=spliced.attention_mask,
                labels=spliced.labels,
                **llm_kwargs,
            )
        aux = collect_aux_losses(modules)
        loss = out.loss
        if loss is not None and aux:
            loss = loss + sum(aux.values())
        return MMoEOutput(
            loss=loss,
            lm_loss=out.loss,
            logits=out.logits,
            aux_losses=aux,
            router_stats=collect_router_stats(modules, self.moe_module_names),
            past_key_values=getattr(out, "past_key_values", None),
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        **generate_kwargs,
    ) -> torch.Tensor:
        """Generate with the LLM's KV cache; returns only the new tokens. Pad prompts on the left."""
        spliced = self.embed_inputs(input_ids, attention_mask, pixel_values)
        ctx = RoutingContext(spliced.modality_ids, spliced.attention_mask.bool())
        generate_kwargs.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        generate_kwargs.setdefault("eos_token_id", self.tokenizer.eos_token_id)
        modules = self.moe_modules()
        with routing_context(modules, ctx):
            out = self.llm.generate(
                inputs_embeds=spliced.inputs_embeds, attention_mask=spliced.attention_mask, **generate_kwargs
            )
        collect_aux_losses(modules)
        collect_router_stats(modules, self.moe_module_names)
        return out
