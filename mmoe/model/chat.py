"""A multi-turn conversation with a model: system prompt, images attached to turns, sampling, streaming.

Each turn re-encodes the whole history with the model's chat template (the same processor as
training), so what the model sees is what it was trained on. Images are kept in reading order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image

from mmoe.errors import MMoEError
from mmoe.tokenization.templates import Turn


@dataclass(frozen=True, kw_only=True)
class Sampling:
    """Decoding settings: ``temperature`` 0 is greedy; ``top_p`` / ``top_k`` filter when sampling."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0

    def generate_kwargs(self) -> dict:
        kwargs: dict = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty}
        if self.temperature <= 0:
            return {**kwargs, "do_sample": False}
        return {**kwargs, "do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k}


def with_image_placeholders(text: str, num_images: int, image_token: str) -> str:
    """Put the missing ``image_token``s before the text (as LLaVA's CLI does); more placeholders than images is an error."""
    present = text.count(image_token)
    if present > num_images:
        raise MMoEError(f"the message has {present} {image_token} placeholder(s) but {num_images} image(s) are attached")
    return f"{image_token}\n" * (num_images - present) + text


@dataclass(kw_only=True)
class ChatSession:
    model: torch.nn.Module
    processor: object
    sampling: Sampling = Sampling()
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.turns = [Turn("system", self.system)] if self.system else []
        self.images = []

    def _next(self, text: str, images: list[Image.Image]) -> tuple[list[Turn], list[Image.Image], dict]:
        turns = [*self.turns, Turn("user", with_image_placeholders(text, len(images), self.processor.image_token))]
        all_images = [*self.images, *images]
        batch = self.processor.prompts([turns], [all_images])
        return turns, all_images, {k: v.to(self.model.device) for k, v in batch.items()}

    def prompt_batch(self, text: str, images: list[Image.Image] | None = None) -> dict:
        """The model inputs the next ``ask(text, images)`` generates from (the history stays unchanged)."""
        return self._next(text, images or [])[2]

    def ask(self, text: str, images: list[Image.Image] | None = None, streamer=None) -> str:
        """Add a user turn (with its images), generate the reply, keep both in the history; returns the reply."""
        turns, all_images, batch = self._next(text, images or [])
        with torch.no_grad():
            new = self.model.generate(**batch, streamer=streamer, **self.sampling.generate_kwargs())
        reply = self.processor.decode(new)[0]
        self.turns, self.images = [*turns, Turn("assistant", reply)], all_images
        return reply
