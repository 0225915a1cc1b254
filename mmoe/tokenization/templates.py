"""Chat templates that render a conversation to text plus the character spans to supervise.

Label masking is done on characters, then mapped to tokens through the tokenizer's offsets, so it
never depends on how a template's pieces happen to tokenize on their own.

Built-in templates follow the references: ``chatml`` (Parrot's Qwen formatter), ``llava_v1``
(LLaVA-1.5's vicuna_v1) and ``plain`` (LLaVA stage-1 captioning). ``hf`` renders with the
tokenizer's own Jinja chat template and finds each assistant reply by rendering prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from transformers import PreTrainedTokenizerBase

from mmoe.errors import MMoEError

Role = Literal["system", "user", "assistant"]


class ConversationError(MMoEError, ValueError):
    """A conversation that a template cannot render (roles, alternation, unknown template)."""

CHATML_SYSTEM = "You are a helpful assistant."
LLAVA_V1_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str


@dataclass
class Rendered:
    """A rendered conversation: the full text and the ``[start, end)`` character spans to train on."""

    text: str
    supervised: list[tuple[int, int]] = field(default_factory=list)

    def add(self, piece: str, supervised: bool = False) -> None:
        start = len(self.text)
        self.text += piece
        if supervised and piece:
            self.supervised.append((start, len(self.text)))


def template_names() -> list[str]:
    return ["chatml", "llava_v1", "plain", "hf"]


def resolve_template(name: str, tokenizer: PreTrainedTokenizerBase) -> str:
    """``auto`` means the tokenizer's own template when it has one, ChatML otherwise."""
    if name == "auto":
        return "hf" if getattr(tokenizer, "chat_template", None) else "chatml"
    if name not in template_names():
        raise ConversationError(f"unknown chat template {name!r}; choose one of auto, {', '.join(template_names())}")
    return name


def _check_roles(turns: list[Turn]) -> None:
    body = [t for t in turns if t.role != "system"]
    if not body:
        raise ConversationError("conversation has no user or assistant turn")
    for i, turn in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn.role != expected:
            raise ConversationError(f"conversation turn {i} has role {turn.role!r}, expected {expected!r} (turns must alternate)")


def _chatml(turns: list[Turn], add_generation_prompt: bool) -> Rendered:
    out = Rendered("")
    if turns[0].role != "system":
        turns = [Turn("system", CHATML_SYSTEM), *turns]
    for turn in turns:
        out.add(f"<|im_start|>{turn.role}\n")
        out.add(f"{turn.content}<|im_end|>\n", supervised=turn.role == "assistant")
    if add_generation_prompt:
        out.add("<|im_start|>assistant\n")
    return out


def _llava_v1(turns: list[Turn], add_generation_prompt: bool, bos: str, eos: str) -> Rendered:
    out = Rendered(bos)
    system = turns[0].content if turns[0].role == "system" else LLAVA_V1_SYSTEM
    out.add(system + " ")
    for turn in (t for t in turns if t.role != "system"):
        if turn.role == "user":
            out.add(f"USER: {turn.content} ")
        else:
            out.add("ASSISTANT:")
            out.add(f" {turn.content}{eos}", supervised=True)
    if add_generation_prompt:
        out.add("ASSISTANT:")
    return out


def _plain(turns: list[Turn], add_generation_prompt: bool, bos: str, image_token: str) -> Rendered:
    out = Rendered(bos)
    for turn in (t for t in turns if t.role != "system"):
        if turn.role == "user":
            out.add(image_token * turn.content.count(image_token))
        else:
            out.add(turn.content + "\n", supervised=True)
    return out


def _hf(turns: list[Turn], add_generation_prompt: bool, tokenizer: PreTrainedTokenizerBase) -> Rendered:
    messages = [{"role": t.role, "content": t.content} for t in turns]

    def render(msgs: list[dict], gen: bool) -> str:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    text = render(messages, add_generation_prompt)
    out = Rendered(text)
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        prefix = render(messages[:i], True)
        upto = render(messages[: i + 1], False)
        if not (upto.startswith(prefix) and text.startswith(upto)):
            raise ConversationError(
                "the tokenizer's chat template rewrites earlier turns, so assistant spans cannot be located; "
                "set model.tokenizer.chat_template to chatml, llava_v1 or plain"
            )
        out.supervised.append((len(prefix), len(upto)))
    return out


def render_conversation(
    turns: list[Turn],
    template: str,
    tokenizer: PreTrainedTokenizerBase,
    image_token: str = "<image>",
    add_generation_prompt: bool = False,
) -> Rendered:
    """Render ``turns`` with ``template`` (a resolved name); supervised spans cover assistant replies."""
    _check_roles(turns)
    name = resolve_template(template, tokenizer)
    bos = tokenizer.bos_token or ""
    eos = tokenizer.eos_token or ""
    if name == "chatml":
        return _chatml(turns, add_generation_prompt)
    if name == "llava_v1":
        return _llava_v1(turns, add_generation_prompt, bos, eos)
    if name == "plain":
        return _plain(turns, add_generation_prompt, bos, image_token)
    return _hf(turns, add_generation_prompt, tokenizer)
