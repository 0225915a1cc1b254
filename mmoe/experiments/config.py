"""A study file (``experiments/*.yaml``): the arms (training recipes), the data, the sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from mmoe.config.base import StrictModel
from mmoe.config.errors import ConfigError, format_validation_error
from mmoe.config.overrides import read_yaml
from mmoe.languages import MMMB_LANGUAGES

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


class StudyConfig(StrictModel):
    """``arms``: name -> recipe path (relative to the study file); ``group_by``: the held-out table's
    columns (``language`` or ``source``, i.e. the task family); ``analyze``: run ``mmoe analyze`` on the
    held-out data; ``overrides``: recipe overrides every arm gets."""

    name: str
    question: str
    claim: str
    arms: dict[str, str] = Field(min_length=2)
    families: dict[str, FamilyConfig] = Field(min_length=1)
    languages: list[str] = list(MMMB_LANGUAGES)
    language_weights: dict[str, float] | None = None
    group_by: Literal["language", "source"]
    analyze: bool = False
    overrides: list[str] = []
    sizes: dict[Literal["small", "gpu"], SizeConfig]
    root: Path = Path(".")  # the study file's directory (set by load_study)

    @model_validator(mode="after")
    def _complete(self) -> "StudyConfig":
        missing = [s for s in SIZES if s not in self.sizes]
        if missing:
            raise ValueError(f"sizes needs {', '.join(missing)}")
        if self.language_weights is not None and set(self.language_weights) != set(self.languages):
            raise ValueError(f"language_weights must give a weight to each of {self.languages}")
        return self

    def recipe(self, arm: str) -> Path:
        return (self.root / self.arms[arm]).resolve()


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
    absent = [f"{arm}: {study.recipe(arm)}" for arm in study.arms if not study.recipe(arm).is_file()]
    if absent:
        raise ConfigError(f"{path}: arm recipes not found: {'; '.join(absent)}")
    return study
