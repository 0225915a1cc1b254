"""Tokenizers and chat templates (with the supervised spans that label masking needs)."""

from mmoe.tokenization.templates import Rendered, Turn, render_conversation, resolve_template, template_names
from mmoe.tokenization.tokenizer import build_byte_tokenizer, load_tokenizer

__all__ = ["Rendered", "resolve_template", "Turn", "build_byte_tokenizer", "load_tokenizer", "render_conversation", "template_names"]
