"""The ``mmoe prep`` pipeline: read sources, validate, tag languages, de-duplicate, balance, write.

Records flow in batches: structure checks, image checks (a thread pool; Pillow releases the GIL),
token lengths with the training template, language ID (lingua, batched and cached), then
de-duplication in input order. Every record is either written or reported with a reason code;
``strict`` turns the first rejection into an error. The output is a pure function of the inputs
and the config, so a re-run writes the same files.
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from mmoe.data.balance import keep_mask, quotas
from mmoe.data.config import PrepConfig, SyntheticSource, source_name
from mmoe.data.dedupe import Deduper, record_key
from mmoe.data.langid import LanguageTagger, candidate_languages
from mmoe.data.reasons import Reason, Rejected, malformed
from mmoe.data.records import Failure, Record, record_text
from mmoe.data.sources import read_source
from mmoe.data.validate import ImageChecker, check_conversation
from mmoe.data.writer import SHARD_PATTERN, ReportWriter, ShardWriter, read_shard, record_row, write_json
from mmoe.errors import MMoEError
from mmoe.images import ImageLimits
from mmoe.languages import UNDETERMINED

FORMAT = "mmoe-prepared/1"
NOTE_FILES = 20  # image paths listed per decoding conversion in the manifest


class PrepError(MMoEError, RuntimeError):
    """``--strict`` met a bad record, or the output directory cannot be used."""


@dataclass
class _Source:
    name: str
    cfg: Any
    image_root: str | None
    items: Iterable[Record | Failure]


@dataclass
class _Stats:
    read: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    reasons_by_source: dict[str, Counter] = field(default_factory=dict)
    detected: Counter = field(default_factory=Counter)
    image_notes: dict[str, Counter] = field(default_factory=dict)  # source -> conversion -> record images
    image_note_files: dict[str, list[str]] = field(default_factory=dict)  # conversion -> first image paths

    def note_images(self, source: str, images: list[tuple[str, tuple[str, ...]]]) -> None:
        for name, notes in images:
            for note in notes:
                self.image_notes.setdefault(source, Counter())[note] += 1
                files = self.image_note_files.setdefault(note, [])
                if len(files) < NOTE_FILES:
                    files.append(name)


def _clean_output(out: Path) -> None:
    """Reuse a previous prep output (replacing it); refuse a non-empty directory that is not one."""
    if out.exists() and any(out.iterdir()):
        if not (out / "manifest.json").exists() and not (out / ".prep-in-progress").exists():
            raise PrepError(f"output directory {out} is not empty and holds no mmoe prep output; choose another")
        for path in [*out.glob(SHARD_PATTERN), out / "manifest.json", out / "report.json"]:
            path.unlink(missing_ok=True)
        shutil.rmtree(out / ".staging", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / ".prep-in-progress").touch()


def _under(root: str | None, path: str | None) -> str | None:
    """``path`` inside ``data_root`` when it is relative (and a root is set)."""
    if path is None or root is None or Path(path).is_absolute():
        return path
    return str(Path(root) / path)


def _sources(cfg: PrepConfig, out: Path) -> list[_Source]:
    sources = []
    for index, scfg in enumerate(cfg.sources):
        name = source_name(scfg, index)
        if cfg.data_root and not isinstance(scfg, SyntheticSource):
            local = _under(cfg.data_root, scfg.path if isinstance(scfg.path, str) else None)
            update = {"image_root": _under(cfg.data_root, scfg.image_root)}
            if scfg.type != "hf":
                update["path"] = [_under(cfg.data_root, p) for p in scfg.paths()] if isinstance(scfg.path, list) else local
            elif local and Path(local).exists():
                update["path"] = local
            scfg = scfg.model_copy(update=update)
        if isinstance(scfg, SyntheticSource):
            from mmoe.data.synthetic import generate_training_set

            raw = Path(scfg.path) if scfg.path else out / "raw" / name
            path = generate_training_set(raw, scfg.n, seed=scfg.seed, languages=scfg.languages)
            items, root = read_source("llava", str(path), name, scfg, raw.resolve())
        elif scfg.type == "hf":
            items, root = read_source("hf", scfg.path, name, scfg, Path(scfg.image_root).resolve() if scfg.image_root else None)
        else:
            chains, roots = [], set()
            for path in scfg.paths():
                if not Path(path).is_file():
                    raise PrepError(f"source {name!r}: input file not found: {path}")
                root = Path(scfg.image_root).resolve() if scfg.image_root else Path(path).resolve().parent
                roots.add(root)
                chains.append(read_source(scfg.type, path, name, scfg, root)[0])
            if len(roots) > 1:
                raise PrepError(f"source {name!r}: input files in different directories need an explicit image_root")
            items, root = itertools.chain(*chains), roots.pop()
        if scfg.max_records:
            items = itertools.islice(items, scfg.max_records)
        sources.append(_Source(name, scfg, str(root) if root else None, items))
    return sources


class _Pipeline:
    def __init__(self, cfg: PrepConfig) -> None:
        from mmoe.data.from_model import text_processor

        self.cfg = cfg
        self.processor = text_processor(cfg.tokenizer)
        v = cfg.validation
        self.images = ImageChecker(ImageLimits(v.min_image_side, v.max_image_pixels, v.max_image_bytes, v.decode_images))
        lid = cfg.langid
        self.tagger = LanguageTagger(
            candidates=candidate_languages(cfg), low_accuracy=lid.low_accuracy, max_chars=lid.max_chars,
            min_letters=lid.min_letters, min_confidence=lid.min_confidence,
        ) if lid.enabled else None
        self.deduper = Deduper() if cfg.dedupe else None
        self.stats = _Stats()

    def _check_images(self, item: tuple[Record, str | None]) -> Rejected | list[tuple[str, tuple[str, ...]]]:
        """The rejection, or each image's name and what decoding converts in it."""
        record, root = item
        noted = []
        try:
            for i, ref in enumerate(record.images):
                info = self.images.check(ref, root, f"image {i} ({ref.path})" if ref.path else f"image {i}")
                if info.notes:
                    noted.append((ref.path or f"{record.file or record.source} record {record.position} image {i}", info.notes))
        except Rejected as exc:
            return exc
        return noted

    def _length(self, record: Record) -> tuple[int, int]:
        try:
            encoded = self.processor.encode(record.conversations)
        except ValueError as exc:
            raise malformed(f"cannot render with template {self.processor.template}: {exc}") from None
        text = len(encoded.input_ids) - encoded.num_images * self.processor.tokens_per_image
        limit = self.cfg.validation.max_tokens
        if limit is not None and len(encoded.input_ids) > limit:
            raise Rejected(Reason.TOO_LONG, f"{len(encoded.input_ids)} tokens (limit {limit})")
        return len(encoded.input_ids), text

    def process(self, batch: list[tuple[Record | Failure, str | None]], pool: ThreadPoolExecutor) -> list[Failure | dict]:
        """Outcomes in input order: a row to write, or a failure to report."""
        out: list[Failure | dict | None] = [None] * len(batch)
        alive: list[int] = []
        for i, (item, _) in enumerate(batch):
            if isinstance(item, Failure):
                out[i] = item
                continue
            try:
                check_conversation(item)
                alive.append(i)
            except Rejected as exc:
                out[i] = _fail(item, exc)
        image_results = pool.map(self._check_images, [batch[i] for i in alive])
        survivors = []
        noted = {}
        for i, result in zip(alive, image_results):
            record = batch[i][0]
            try:
                if isinstance(result, Rejected):
                    raise result
                survivors.append((i, *self._length(record)))
                noted[i] = result
            except Rejected as exc:
                out[i] = _fail(record, exc)
        records = [batch[i][0] for i, _, _ in survivors]
        detected = self.tagger.detect([record_text(r) for r in records]) if self.tagger else [UNDETERMINED] * len(records)
        for (i, n_tokens, n_text), record, found in zip(survivors, records, detected):
            key = record_key(record)
            if self.deduper is not None and self.deduper.seen(key):
                out[i] = _fail(record, Rejected(Reason.DUPLICATE, "same images and turns as an earlier record"))
                continue
            self.stats.detected[found] += 1
            self.stats.note_images(record.source, noted[i])
            language = self.tagger.resolve(record.language, found) if self.tagger else (record.language or UNDETERMINED)
            out[i] = record_row(record, language=language, detected=found, num_tokens=n_tokens, num_text_tokens=n_text, key=key)
        return out  # type: ignore[return-value]


def _fail(record: Record, error: Rejected) -> Failure:
    return Failure(record.source, record.position, record.id, error, record.file)


def _items(sources: list[_Source], stats: _Stats) -> Iterator[tuple[Record | Failure, str | None]]:
    for source in sources:
        for item in source.items:
            stats.read[source.name] += 1
            yield item, source.image_root


def _batches(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def _token_stats(lengths: np.ndarray) -> dict[str, Any]:
    if not len(lengths):
        return {"count": 0}
    pct = [round(float(p), 2) for p in np.percentile(lengths, [50, 90, 99])]
    return {
        "count": int(len(lengths)), "total": int(lengths.sum()), "min": int(lengths.min()), "max": int(lengths.max()),
        "mean": round(float(lengths.mean()), 2), "p50": pct[0], "p90": pct[1], "p99": pct[2],
    }


def _balance(staging: Path, final: ShardWriter, cfg: PrepConfig) -> int:
    """Second pass: keep each language's quota of staged records (in input order)."""
    files = sorted(staging.glob(SHARD_PATTERN))
    tables = [read_shard(f).select(["language", "key"]) for f in files]
    languages = np.concatenate([t.column("language").to_numpy(zero_copy_only=False) for t in tables]) if tables else np.array([])
    keys = np.concatenate([t.column("key").to_numpy() for t in tables]) if tables else np.array([], dtype=np.uint64)
    quota = quotas(dict(Counter(languages.tolist())), cfg.balance)
    keep = keep_mask(languages, keys, quota, cfg.balance.seed)
    start = 0
    for f in files:
        table = read_shard(f)
        final.write_table(table.filter(keep[start : start + len(table)]))
        start += len(table)
    shutil.rmtree(staging)
    return int((~keep).sum())


def prepare(cfg: PrepConfig, out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run the pipeline into ``out_dir``; return the manifest (also written to ``manifest.json``)."""
    from tqdm import tqdm

    from mmoe.data.from_model import measured_with, with_model_tokenizer

    origin = measured_with(cfg)
    cfg = with_model_tokenizer(cfg)
    out = Path(out_dir)
    _clean_output(out)
    sources = _sources(cfg, out)
    pipe = _Pipeline(cfg)
    report = ReportWriter(out / "report.json")
    staging = out / ".staging"
    writer = ShardWriter(staging if cfg.balance.active else out, cfg.shard_size)
    stats = pipe.stats
    try:
        with ThreadPoolExecutor(cfg.threads) as pool, tqdm(desc="prep", unit="rec", disable=not progress, mininterval=1.0) as bar:
            for batch in _batches(_items(sources, stats), cfg.batch_size):
                for outcome in pipe.process(batch, pool):
                    if isinstance(outcome, Failure):
                        if cfg.strict:
                            raise PrepError(_describe(outcome))
                        report.write(outcome)
                        stats.rejected[outcome.source] += 1
                        stats.reasons[outcome.error.reason.value] += 1
                        stats.reasons_by_source.setdefault(outcome.source, Counter())[outcome.error.reason.value] += 1
                    else:
                        writer.write(outcome)
                bar.update(len(batch))
                bar.set_postfix(kept=writer.count, rejected=report.count, refresh=False)
        writer.close()
    finally:
        report.close()
    balanced_out = 0
    final = writer
    if cfg.balance.active:
        final = ShardWriter(out, cfg.shard_size)
        balanced_out = _balance(staging, final, cfg)
        final.close()
    manifest = _manifest(cfg, sources, stats, final, report.count, balanced_out, pipe)
    manifest["tokenizer"] = {**cfg.tokenizer.model_dump(mode="json"), "from": origin}
    write_json(out / "manifest.json", manifest)
    (out / ".prep-in-progress").unlink(missing_ok=True)
    return manifest


def _describe(failure: Failure) -> str:
    where = f"{failure.file}, record {failure.position}" if failure.file else f"record {failure.position}"
    ident = f" (id {failure.id})" if failure.id is not None else ""
    return f"source {failure.source!r}, {where}{ident}: {failure.error.reason.value}: {failure.error.detail}"


def _manifest(cfg, sources, stats: _Stats, final: ShardWriter, rejected: int, balanced_out: int, pipe: _Pipeline) -> dict[str, Any]:
    read = sum(stats.read.values())
    mismatches = pipe.tagger.mismatches if pipe.tagger else Counter()
    return {
        "format": FORMAT,
        "read": read,
        "kept": final.count,
        "rejected": rejected,
        "balanced_out": balanced_out,
        "rejected_by_reason": dict(sorted(stats.reasons.items())),
        "sources": {
            s.name: {
                "type": s.cfg.type,
                "image_root": s.image_root,
                "read": stats.read[s.name],
                "kept": final.sources[s.name],
                "rejected": stats.rejected[s.name],
                "rejected_by_reason": dict(sorted(stats.reasons_by_source.get(s.name, Counter()).items())),
                "image_notes": dict(sorted(stats.image_notes.get(s.name, Counter()).items())),
            }
            for s in sources
        },
        "languages": dict(sorted(final.languages.items())),
        "image_notes": dict(sorted(sum(stats.image_notes.values(), Counter()).items())),
        "image_note_files": dict(sorted(stats.image_note_files.items())),
        "detected_languages": dict(sorted(stats.detected.items())),
        "undetermined": final.languages.get(UNDETERMINED, 0),
        "langid_candidates": list(pipe.tagger.candidates) if pipe.tagger else [],
        "language_mismatches": {"count": sum(mismatches.values()), "pairs": dict(sorted(mismatches.items()))},
        "tokens": {**_token_stats(np.frombuffer(final.lengths, dtype=np.int32)), "tokens_per_image": cfg.tokenizer.tokens_per_image},
        "shards": final.shards,
        "config": cfg.model_dump(mode="json"),
    }


def shard_files(out_dir: str | Path) -> list[Path]:
    return sorted(Path(out_dir).glob(SHARD_PATTERN))


