"""Splice projected visual tokens into the LLM's input embeddings (Hugging Face LLaVA convention).

Each image occupies as many placeholder tokens in ``input_ids`` as it yields visual tokens, so the
same inputs run in HF LLaVA and here; visual tokens fill the placeholders in reading order.
"""

from __future__ import annotations

import torch

from mmoe.errors import MMoEError

IGNORE_INDEX = -100


class ImageTokenMismatch(MMoEError, ValueError):
    """Placeholders in ``input_ids`` and images in ``pixel_values`` disagree."""


def images_per_sample(image_mask: torch.Tensor, tokens_per_image: int, num_images: int) -> torch.Tensor:
    """Count images per sample from placeholder counts; raise a readable error on any mismatch."""
    per_sample = image_mask.sum(dim=1)
    total = int(per_sample.sum())
    if total and num_images == 0:
        raise ImageTokenMismatch(
            f"input_ids contain {total} image placeholder tokens but no pixel_values were given"
        )
    bad = [int(i) for i in torch.nonzero(per_sample % tokens_per_image).flatten()]
    if bad:
        counts = ", ".join(f"sample {i}: {int(per_sample[i])}" for i in bad)
        raise ImageTokenMismatch(
            f"placeholder counts must be multiples of {tokens_per_image} visual tokens per image ({counts})"
        )
    if total != num_images * tokens_per_image:
        raise ImageTokenMismatch(
            f"input_ids hold placeholders for {total // tokens_per_image} image(s) "
            f"({total} tokens) but pixel_values hold {num_images} image(s) "
            f"({num_images * tokens_per_image} visual tokens, {tokens_per_image} per image)"
        )
    return per_sample // tokens_per_image


def scatter_visual_tokens(text_embeds: torch.Tensor, image_mask: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
    """Write ``visual`` (``[N_img, T, D]``) into the placeholder positions of ``text_embeds`` (``[B, L, D]``)."""
    mask = image_mask.unsqueeze(-1).expand_as(text_embeds)
    return text_embeds.masked_scatter(mask, visual.to(text_embeds.dtype))


def mask_image_labels(labels: torch.Tensor, image_mask: torch.Tensor) -> torch.Tensor:
    """Never supervise image positions."""
    return labels.masked_fill(image_mask, IGNORE_INDEX)
