"""The base class of every config section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys fail (naming the key), assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
