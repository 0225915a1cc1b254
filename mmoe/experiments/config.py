"""A study file (``experiments/*.yaml``): the arms (training recipes), the data, the sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from mmoe.config.base import StrictModel
from mmoe.config.errors import ConfigError, format_validation_error
from mmoe.config.overrides import read_yaml
from mmoe.languages import MMMB_LANGUAGES
from mmoe.train.config import Group

SIZES = ("small", "gpu")


class FamilyConfig(StrictModel):
    """One task family: how its synthetic records answer (``mmoe.data.synthetic.generate_training_set``)."""

    short_format: Literal["word", "sentence"] = "word"


class SizeConfig(StrictModel):
    """Records per family (training, held-out), optimizer steps and batch of one size."""

    train_records: int = Field(gt=0)
    test_records: int = Field(gt=0)
    steps: int = Field(gt=0)
    micro_batch_size: int = Field(gt=0)
    base_steps: int = Field(0, ge=0)  # the base model's steps (studies with a base; 0 otherwise)
    eval_every: int = Field(0, ge=0)  # held-out loss every N steps during training (validation curves; 0: none)


class BaseConfig(StrictModel):
    """A base model trained first, per seed, with ``recipe`` on the training records of ``families``
    (all by default): a stand-in for the pretrained model a fine-tuning method starts from (the tiny LLM
    starts random). Every arm then starts from it, loading only the parameter groups in ``load``
    (``train.init_groups``), so arms whose experts differ in number or shape share the same base."""

    recipe: str
    families: list[str] | None = None
    load: list[Group] = Field(default_factory=lambda: ["vision", "projector", "llm"], min_length=1)


class StudyConfig(StrictModel):
    """``arms``: name -> recipe path (relative to the study file); ``group_by``: the held-out table's
    columns (``language`` or ``source``, i.e. the task family); ``analyze``: run ``mmoe analyze`` on the
    held-out data; ``overrides``: recipe overrides every arm gets; ``base``: see ``BaseConfig``."""

    name: str
    question: str
    claim: str
    arms: dict[str, str] = Field(min_length=2)
    families: dict[str, FamilyConfig] = Field(min_length=1)
    languages: list[str] = list(MMMB_LANGUAGES)
    language_weights: dict[str, float] | None = None
    group_by: Literal["language", "source"]
    analyze: bool = False
    base: BaseConfig | None = None
    overrides: list[str] = []
    sizes: dict[Literal["small", "gpu"], SizeConfig]
    root: Path = Path(".")  # the study file's directory (set by load_study)

    @model_validator(mode="after")
    def _complete(self) -> "StudyConfig":
        missing = [s for s in SIZES if s not in self.sizes]
        if missing:
            raise ValueError(f"sizes needs {', '.join(missing)}")
        if (self.base is None) != all(s.base_steps == 0 for s in self.sizes.values()):
            raise ValueError("a base model needs sizes.*.base_steps > 0 in every size, and base_steps needs a base")
        unknown = [f for f in (self.base.families or []) if f not in self.families] if self.base else []
        if unknown:
            raise ValueError(f"base.families {unknown} are not among the families {list(self.families)}")
        if self.language_weights is not None and set(self.language_weights) != set(self.languages):
            raise ValueError(f"language_weights must give a weight to each of {self.languages}")
        return self

    def recipe(self, arm: str | None) -> Path:
        """An arm's recipe, or the base model's for ``arm=None``."""
        return (self.root / (self.base.recipe if arm is None else self.arms[arm])).resolve()


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate a study file; every arm's recipe must exist."""
    path = Path(path)
    raw = read_yaml(path)
    if "root" in raw:
        raise ConfigError(f"{path}: 'root' is set by the runner (the study file's directory), not in the file")
    try:
        study = StudyConfig.model_validate({**raw, "root": path.parent})
    except ValidationError as exc:
        raise format_validation_error(exc, StudyConfig, str(path)) from None
    arms = [*study.arms, *([None] if study.base else [])]
    absent = [f"{arm or 'base'}: {study.recipe(arm)}" for arm in arms if not study.recipe(arm).is_file()]
    if absent:
        raise ConfigError(f"{path}: arm recipes not found: {'; '.join(absent)}")
    return study
