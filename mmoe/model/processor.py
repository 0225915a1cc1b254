"""Turn conversations and images into model inputs, the same way for training and inference.

Labels come from the template's supervised character spans mapped through the tokenizer's offsets;
each ``<image>`` token is then expanded to the tower's visual-token count (HF LLaVA convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from transformers import PreTrainedTokenizerBase

from mmoe.config.errors import ConfigError
from mmoe.model.splice import IGNORE_INDEX, ImageTokenMismatch
from mmoe.tokenization.templates import Turn, render_conversation, resolve_template


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    num_images: int


class MMoEProcessor:
    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        image_transform,
        tokens_per_image: int,
        template: str = "auto",
        image_token: str = "<image>",
    ) -> None:
        if not tokenizer.is_fast:
            raise ConfigError("mmoe needs a fast (Rust) tokenizer for label masking by character offsets")
        self.tokenizer = tokenizer
        self.image_transform = image_transform
        self.tokens_per_image = tokens_per_image
        self.template = resolve_template(template, tokenizer)
        self.image_token = image_token
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)

    @classmethod
    def from_model(cls, model) -> "MMoEProcessor":
        tok_cfg = model.config.model.tokenizer
        return cls(model.tokenizer, model.vision_tower.preprocess, model.tokens_per_image, tok_cfg.chat_template, tok_cfg.image_token)

    def encode(self, turns: list[Turn], add_generation_prompt: bool = False) -> Encoded:
        """Token ids with image placeholders expanded, and labels only on assistant replies."""
        rendered = render_conversation(turns, self.template, self.tokenizer, self.image_token, add_generation_prompt)
        enc = self.tokenizer(rendered.text, add_special_tokens=False, return_offsets_mapping=True)
        ids, labels, images = [], [], 0
        spans = rendered.supervised
        for token_id, (start, end) in zip(enc["input_ids"], enc["offset_mapping"]):
            if token_id == self.image_token_id:
                ids.extend([token_id] * self.tokens_per_image)
                labels.extend([IGNORE_INDEX] * self.tokens_per_image)
                images += 1
                continue
            supervised = end > start and any(s <= start and end <= e for s, e in spans)
            ids.append(token_id)
            labels.append(token_id if supervised else IGNORE_INDEX)
        return Encoded(ids, labels, images)

    def pixel_values(self, images: list[Image.Image]) -> torch.Tensor | None:
        return self.image_transform(images) if images else None

    def pad(self, encoded: list[Encoded], images: list[Image.Image], side: str = "right", extra: int = 0) -> dict[str, torch.Tensor]:
        """Pad encoded samples into a batch (labels -100 on padding); ``extra`` adds pad columns."""
        width = max(len(e.input_ids) for e in encoded) + extra
        input_ids = torch.full((len(encoded), width), self.tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, enc in enumerate(encoded):
            n = len(enc.input_ids)
            span = slice(width - n, width) if side == "left" else slice(0, n)
            input_ids[row, span] = torch.tensor(enc.input_ids)
            labels[row, span] = torch.tensor(enc.labels)
            attention_mask[row, span] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if images:
            batch["pixel_values"] = self.pixel_values(images)
        return batch

    def prompts(self, conversations: list[list[Turn]], images: list[list[Image.Image]]) -> dict[str, torch.Tensor]:
        """A left-padded batch of generation prompts (each ending with the assistant prefix)."""
        encoded = [self.encode(turns, add_generation_prompt=True) for turns in conversations]
        for i, (enc, imgs) in enumerate(zip(encoded, images)):
            if enc.num_images != len(imgs):
                raise ImageTokenMismatch(f"prompt {i} has {enc.num_images} {self.image_token} placeholder(s) but {len(imgs)} image(s)")
        batch = self.pad(encoded, [img for imgs in images for img in imgs], side="left")
        del batch["labels"]
        return batch

    def decode(self, token_ids: torch.Tensor) -> list[str]:
        return self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)
