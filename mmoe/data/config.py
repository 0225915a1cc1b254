"""Typed configs: ``PrepConfig`` (a ``mmoe prep`` mixture) and ``DataConfig`` (the ``data:`` section of a recipe)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, field_validator, model_validator

from mmoe.config.base import StrictModel
from mmoe.config.errors import ConfigError, format_validation_error
from mmoe.config.overrides import apply_overrides, read_yaml


class _Source(StrictModel):
    """Fields every source has. ``name`` labels counts and report entries (default: the type)."""

    name: str | None = None
    language: str | None = None  # declared for every record, ISO 639-1 (a record's own ``language`` field wins)
    max_records: int | None = Field(default=None, ge=1)

    @field_validator("language")
    @classmethod
    def _iso_639_1(cls, value: str | None) -> str | None:
        from mmoe.languages import iso_language

        if value is None:
            return None
        code = iso_language(value)
        if code is None:
            raise ValueError(f"{value!r} is not an ISO 639-1 language code (two letters, such as 'pt')")
        return code


class _FileSource(_Source):
    path: str | list[str]
    image_root: str | None = None  # default: the directory of each input file

    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class LlavaSource(_FileSource):
    type: Literal["llava"] = "llava"
    image_first: bool = True  # move <image> to the start of its turn (LLaVA / Parrot)


class ShareGPTSource(_FileSource):
    type: Literal["sharegpt"] = "sharegpt"
    image_first: bool = True


class CaptionSource(_FileSource):
    type: Literal["captions"] = "captions"
    image_column: str = "image"
    caption_column: str = "caption"
    prompt: str | None = None


class MCQSource(_FileSource):
    type: Literal["mcq_tsv"] = "mcq_tsv"


class HFSource(_Source):
    type: Literal["hf"] = "hf"
    path: str  # hub id, data directory, or a save_to_disk directory
    split: str = "train"
    subset: str | None = None
    image_root: str | None = None  # for image columns that hold relative paths
    image_column: str | None = None
    caption_column: str | None = None
    prompt: str | None = None


class SyntheticSource(_Source):
    """Generate the synthetic multilingual shapes set (``mmoe.data.synthetic``), then read it."""

    type: Literal["synthetic"] = "synthetic"
    n: int = Field(default=1000, ge=1)
    seed: int = 0
    languages: list[str] = ["en", "zh", "pt", "ar", "tr", "ru"]
    path: str | None = None  # where to write the raw set (default: OUT/raw)


SourceConfig = Annotated[
    Union[LlavaSource, ShareGPTSource, CaptionSource, MCQSource, HFSource, SyntheticSource],
    Field(discriminator="type"),
]


class ValidationConfig(StrictModel):
    min_image_side: int = Field(default=8, ge=1)
    max_image_pixels: int = Field(default=89_478_485, ge=1)
    max_image_bytes: int = Field(default=64 << 20, ge=1)
    decode_images: bool = True
    max_tokens: int | None = Field(default=2048, ge=1)  # None: no length check


class TokenizerSpec(StrictModel):
    """How lengths are measured: the training tokenizer and template, and visual tokens per image."""

    name: str = "byte"
    chat_template: Literal["auto", "chatml", "llava_v1", "plain"] = "chatml"
    image_token: str = "<image>"
    tokens_per_image: int = Field(default=576, ge=1)


class LangIdConfig(StrictModel):
    """Language ID chooses among candidates: ``languages`` (default: the six MMMB languages; ``all``: every
    language lingua knows) plus the languages the sources declare. A text with fewer than ``min_letters``
    letters, or whose best candidate is less confident than ``min_confidence``, is ``und``."""

    enabled: bool = True
    languages: list[str] | Literal["all"] | None = None
    low_accuracy: bool = False
    max_chars: int = Field(default=200, ge=1)
    min_letters: int = Field(default=3, ge=1)
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)

    @field_validator("languages")
    @classmethod
    def _known(cls, value: list[str] | str | None) -> list[str] | str | None:
        from mmoe.languages import DETECTABLE, normalize_language

        if value is None or value == "all":
            return value
        bad = [v for v in value if normalize_language(v) not in DETECTABLE]
        if bad:
            raise ValueError(f"lingua cannot detect {', '.join(bad)}; supported: {' '.join(DETECTABLE)}")
        if len(set(map(normalize_language, value))) < 2:
            raise ValueError("give two or more candidate languages, or leave it unset for the six MMMB languages")
        return [normalize_language(v) for v in value]  # type: ignore[misc]


class BalanceConfig(StrictModel):
    """Down-sample languages: ``caps`` bound each language; ``ratios`` fix the shares of the listed ones."""

    caps: dict[str, int] = {}
    ratios: dict[str, float] = {}
    seed: int = 0

    @field_validator("ratios")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if v <= 0]
        if bad:
            raise ValueError(f"ratios must be positive (bad: {', '.join(bad)})")
        return value

    @property
    def active(self) -> bool:
        return bool(self.caps or self.ratios)


class PrepConfig(StrictModel):
    """A prep: its sources, and what lengths are measured with (``model``, or a ``tokenizer`` section, or the byte default).

    ``model`` (a recipe or a saved model directory) supplies the tokenizer, chat template and visual
    tokens per image, and ``validation.max_tokens`` unless that is set.
    """

    sources: list[SourceConfig] = Field(min_length=1)
    model: str | None = None
    data_root: str | None = None  # relative source paths and image roots are taken from here
    validation: ValidationConfig = ValidationConfig()
    tokenizer: TokenizerSpec = TokenizerSpec()
    langid: LangIdConfig = LangIdConfig()
    dedupe: bool = True
    balance: BalanceConfig = BalanceConfig()
    shard_size: int = Field(default=20_000, ge=1)
    threads: int = Field(default=4, ge=1)
    batch_size: int = Field(default=512, ge=1)
    strict: bool = False

    @model_validator(mode="after")
    def _model_or_tokenizer(self) -> "PrepConfig":
        if self.model is not None and "tokenizer" in self.model_fields_set:
            raise ValueError("set either 'model' (its tokenizer, chat template and visual tokens are used) or 'tokenizer', not both")
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> "PrepConfig":
        names = [source_name(s, i) for i, s in enumerate(self.sources)]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source names must be unique; set 'name' on: {', '.join(dup)}")
        return self


def source_name(source: Any, index: int) -> str:
    return source.name or (source.type if index == 0 else f"{source.type}_{index}")


SOURCE_TYPES = {cls.model_fields["type"].default: cls for cls in (LlavaSource, ShareGPTSource, CaptionSource, MCQSource, HFSource, SyntheticSource)}


def _check_source_keys(raw: dict[str, Any], source: str) -> None:
    """Name unknown keys inside ``sources[i]`` with the closest valid key of that source type."""
    problems = []
    for i, item in enumerate(raw.get("sources") or []):
        cls = SOURCE_TYPES.get(item.get("type")) if isinstance(item, dict) else None
        if cls is None:
            continue
        for key in item:
            if key not in cls.model_fields:
                close = difflib.get_close_matches(key, list(cls.model_fields), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                problems.append(f"unknown key 'sources.{i}.{key}'{hint}; valid keys for type {item['type']}: {', '.join(cls.model_fields)}")
    if problems:
        raise ConfigError(f"invalid prep config {source}:\n  - " + "\n  - ".join(problems))


def parse_prep_config(raw: dict[str, Any], source: str = "<dict>") -> PrepConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid prep config {source}: top level must be a mapping")
    _check_source_keys(raw, source)
    try:
        return PrepConfig.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, PrepConfig, source) from None


def read_prep_yaml(path: str | Path) -> dict[str, Any]:
    """A prep YAML as a dict; a relative ``model`` path is relative to the YAML's directory (like ``include``)."""
    raw = read_yaml(path)
    if isinstance(raw, dict) and isinstance(raw.get("model"), str) and not Path(raw["model"]).is_absolute():
        raw["model"] = str(Path(path).parent / raw["model"])
    return raw


def load_prep_config(path: str | Path, overrides: list[str] | None = None) -> PrepConfig:
    return parse_prep_config(apply_overrides(read_prep_yaml(path), overrides or []), source=str(path))


class DataConfig(StrictModel):
    """Training data: prepared datasets (``mmoe prep`` outputs) and how batches are formed."""

    train: list[str] = []
    eval: list[str] = []
    image_roots: dict[str, str] = {}  # source name -> image root, overriding the manifest
    max_length: int | None = Field(default=None, ge=1)  # default: model.tokenizer.max_length
    group_by_length: bool = True
    group_by_modality: bool = True
    num_workers: int = Field(default=2, ge=0)
    seed: int = 0
