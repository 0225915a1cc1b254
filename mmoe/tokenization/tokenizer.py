"""Tokenizer loading, and a byte-level tokenizer that is built locally for the tiny default.

The byte-level tokenizer maps every UTF-8 byte to one token, so it covers every script (the six
MMMB languages included) without a download; it is a real ``PreTrainedTokenizerFast`` that saves
and loads like any Hugging Face tokenizer.
"""

from __future__ import annotations

from pathlib import Path

from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import bytes_to_unicode

from mmoe.config.errors import ConfigError
from mmoe.config.schema import TokenizerConfig

BYTE_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]

CHATML_JINJA = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _wrap(core: Tokenizer) -> PreTrainedTokenizerFast:
    """A Hugging Face tokenizer with ChatML specials, ``<image>`` and a ChatML chat template."""
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
    )
    tok.add_special_tokens({"additional_special_tokens": BYTE_SPECIAL_TOKENS[1:]})
    tok.chat_template = CHATML_JINJA
    return tok


def build_byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer (256 byte tokens + ChatML specials + ``<image>``)."""
    alphabet = bytes_to_unicode()
    vocab = {alphabet[b]: b for b in range(256)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    return _wrap(core)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained locally on ``texts`` (every byte stays encodable).

    Shorter sequences than the byte tokenizer for the same text, so small CPU runs train faster.
    """
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(BYTE_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return _wrap(core)


def load_tokenizer(cfg: TokenizerConfig, llm_name: str | None, source: str | Path | None = None) -> PreTrainedTokenizerBase:
    """Load the tokenizer a recipe names and make sure it has the image placeholder and a pad token.

    ``source`` (a saved mmoe directory) wins over the config so a saved model reloads exactly.
    """
    name = str(source) if source is not None else (cfg.name or llm_name)
    if name is None:
        raise ConfigError("tokenizer: no source; set model.tokenizer.name (a hub id, a path, or 'byte')")
    if name == "byte":
        tok = build_byte_tokenizer()
    else:
        try:
            tok = AutoTokenizer.from_pretrained(name, trust_remote_code=False)
        except ValueError as exc:
            if "trust_remote_code" not in str(exc):
                raise
            raise ConfigError(
                f"tokenizer {name}: needs its own Python code (trust_remote_code), which mmoe never runs; "
                "use a tokenizer that transformers supports natively"
            ) from None
    if cfg.image_token not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [cfg.image_token]})
    if tok.pad_token is None:
        tok.pad_token = tok.unk_token or tok.eos_token
    tok.padding_side = cfg.padding_side
    return tok
