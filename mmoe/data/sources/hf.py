"""Hugging Face datasets (a hub id or a local path) as records.

Chat columns (``conversations`` / ``messages`` in LLaVA or ShareGPT form), the_cauldron's ``texts``
(``user``/``assistant`` pairs), or a caption column are read; image columns are read undecoded
(``Image(decode=False)``) so every image goes through the same validation as files do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from mmoe.data.reasons import malformed
from mmoe.data.records import IMAGE_TOKEN, Failure, ImageRef, Record
from mmoe.data.sources.chat import TURN_KEYS, parse_chat
from mmoe.data.sources.common import as_failure_or_record, text_field
from mmoe.errors import MMoEError

IMAGE_COLUMNS = ("images", "image")


class HFSourceError(MMoEError):
    """A Hugging Face dataset that cannot be opened: a missing local path, an unreachable hub id, a bad split."""


def _looks_local(name: str) -> bool:
    """A name that can only be a path: hub ids are ``name`` or ``owner/name``, never ``./x``, ``/x``, ``a/b/c``."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def load_hf(name: str, split: str = "train", subset: str | None = None):
    """``datasets.load_dataset`` for hub ids and data directories; ``load_from_disk`` for saved datasets.
    A path that does not exist is never sent to the hub; a hub failure is an ``HFSourceError``."""
    import datasets

    path = Path(name).expanduser()
    if path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists()):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise HFSourceError(f"{name}: no split {split!r} (splits: {', '.join(loaded)})")
            return loaded[split]
        return loaded
    if not path.exists() and _looks_local(name):
        raise HFSourceError(f"{name}: no such directory (a local path, so the hub is not asked)")
    try:
        return datasets.load_dataset(name, subset, split=split)
    except (ConnectionError, OSError, ValueError) as exc:
        where = "directory" if path.exists() else "hub id, and no such local directory exists"
        raise HFSourceError(f"{name}: cannot be loaded as a dataset {where} ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})") from exc


def _undecoded(ds, column: str):
    import datasets

    feature = ds.features[column]
    if isinstance(feature, datasets.Image):
        return ds.cast_column(column, datasets.Image(decode=False))
    if isinstance(feature, (datasets.Sequence, datasets.List)) and isinstance(feature.feature, datasets.Image):
        return ds.cast_column(column, datasets.List(datasets.Image(decode=False)))
    return ds


def _image_refs(value: Any, column: str) -> list[ImageRef]:
    items = value if isinstance(value, list) else [value]
    refs = []
    for i, item in enumerate(items):
        if item is None:
            continue
        if isinstance(item, dict) and item.get("bytes"):
            refs.append(ImageRef(data=item["bytes"]))
        elif isinstance(item, dict) and item.get("path"):
            refs.append(ImageRef(path=text_field(item["path"], f"{column}[{i}].path")))
        elif isinstance(item, str) and item:
            refs.append(ImageRef(path=text_field(item, f"{column}[{i}]")))
        else:
            raise malformed(f"field '{column}[{i}]' is neither an image nor a path")
    return refs


def _cauldron_turns(texts: Any) -> list[dict]:
    if not isinstance(texts, list):
        raise malformed("field 'texts' must be a list of {user, assistant}")
    turns = []
    for i, pair in enumerate(texts):
        if not isinstance(pair, dict):
            raise malformed(f"field 'texts[{i}]' must be an object")
        turns += [{"from": "user", "value": pair.get("user")}, {"from": "assistant", "value": pair.get("assistant")}]
    return turns


def parse_hf_row(row: dict, *, image_column: str | None, caption_column: str | None, prompt: str | None, fallback_id: str, language: str | None) -> Record:
    images = _image_refs(row[image_column], image_column) if image_column and row.get(image_column) is not None else []
    obj = {k: v for k, v in row.items() if k != image_column}
    if caption_column:
        caption = row.get(caption_column)
        if caption is None:
            raise malformed(f"missing field '{caption_column}'")
        user = IMAGE_TOKEN * len(images) + ("\n" + prompt if prompt else "")
        obj = {"id": row.get("id"), "conversations": [{"from": "user", "value": user}, {"from": "assistant", "value": caption}]}
    elif "texts" in obj and not any(k in obj for k in TURN_KEYS):
        obj["conversations"] = _cauldron_turns(obj.pop("texts"))
    return parse_chat(
        obj, id_required=False, fallback_id=fallback_id, language=language,
        add_missing_placeholders=True, images=images,
    )


def read_hf(
    name: str,
    source: str,
    language: str | None = None,
    split: str = "train",
    subset: str | None = None,
    image_column: str | None = None,
    caption_column: str | None = None,
    prompt: str | None = None,
) -> Iterator[Record | Failure]:
    try:
        ds = load_hf(name, split, subset)
    except HFSourceError as exc:
        raise HFSourceError(f"source {source!r}: {exc}") from exc.__cause__
    column = image_column or next((c for c in IMAGE_COLUMNS if c in ds.column_names), None)
    if column is not None:
        ds = _undecoded(ds, column)
    for position, row in enumerate(ds):
        yield as_failure_or_record(
            source, position, row,
            lambda r, p=position: parse_hf_row(
                r, image_column=column, caption_column=caption_column, prompt=prompt,
                fallback_id=f"{split}:{p}", language=language,
            ),
            name,
        )
