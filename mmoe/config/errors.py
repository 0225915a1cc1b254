"""Readable configuration errors: the key, its closest valid spelling, the offending value."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from mmoe.errors import MMoEError


class ConfigError(MMoEError, ValueError):
    """A configuration problem described for a person, not a stack trace."""


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _schema_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the last element of ``loc``."""
    model: Any = root
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = _unwrap_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap_model(annotation: Any) -> Any:
    """Find a BaseModel inside ``X | None`` style annotations."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def format_validation_error(err: ValidationError, root: type[BaseModel], source: str) -> ConfigError:
    """Turn a pydantic ValidationError into one ConfigError listing every problem."""
    lines = []
    for item in err.errors():
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = _dotted(loc)
        if item["type"] == "extra_forbidden":
            owner = _schema_at(root, loc)
            valid = sorted(owner.model_fields) if owner else []
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            lines.append(f"unknown key '{key}'{hint}; valid keys here: {', '.join(valid)}")
        elif item["type"] == "missing":
            lines.append(f"missing required key '{key}'")
        else:
            value = item.get("input")
            lines.append(f"field '{key}': {item['msg']} (got {value!r})")
    return ConfigError(f"invalid config {source}:\n  - " + "\n  - ".join(lines))
