"""Run a model over prepared data or a benchmark file and accumulate router statistics.

Statistics are kept per category (a prepared record's ``source``, a benchmark row's ``category``)
and per routed module (``llm.model.layers.<i>.mlp``, ``projector``); inside a module they carry the
usual keys (``tokens_per_expert``, ``tokens_per_expert/<lang>``, ``router_entropy``,
``entropy_hist``, with ``text/``/``image/`` prefixes in modality groups). Padding never counts.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch

from mmoe.languages import language_id
from mmoe.moe.core.context import RoutingRecords
from mmoe.moe.core.stats import merge_stats

Stats = dict[str, dict[str, torch.Tensor]]
ENTROPY_BINS = 20
ALL = "all"


class Collector:
    """Accumulates one forward's router statistics at a time into per-category totals."""

    def __init__(self) -> None:
        self.by_category: dict[str, Stats] = defaultdict(dict)
        self.samples: dict[str, int] = defaultdict(int)

    def add(self, category: str, stats: Stats, samples: int) -> None:
        for target in (category, ALL):
            totals = self.by_category[target]
            for module, values in stats.items():
                totals[module] = merge_stats(totals.get(module, {}), values)
            self.samples[target] += samples


@torch.no_grad()
def _forward(model, batch: dict[str, torch.Tensor]) -> Stats:
    records = RoutingRecords(entropy_bins=ENTROPY_BINS)
    device = model.device
    inputs = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "pixel_values", "language_ids")}
    return model(**inputs, records=records).router_stats


def collect_prepared(model, path: str | Path, *, batch_size: int = 8, limit: int | None = None) -> Collector:
    """Teacher-forced forwards over a prepared dataset (``mmoe prep`` output), grouped by source."""
    from mmoe.data.collate import Collator
    from mmoe.data.dataset import ConversationDataset
    from mmoe.model.processor import MMoEProcessor

    dataset = ConversationDataset.from_paths([str(path)], MMoEProcessor.from_model(model), model.config.model.tokenizer.max_length)
    sources = [source for part in dataset.parts for source in part.records["source"]]
    count = len(dataset) if limit is None else min(limit, len(dataset))
    by_source: dict[str, list[int]] = defaultdict(list)
    for index in range(count):
        by_source[sources[index]].append(index)
    collate = Collator(model.tokenizer.pad_token_id)
    collector = Collector()
    for source, indices in sorted(by_source.items()):
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            collector.add(source, _forward(model, collate([dataset[i] for i in chunk])), len(chunk))
    return collector


def collect_benchmark(model, path: str | Path, *, batch_size: int = 8, limit: int | None = None, style: str = "vlmevalkit") -> Collector:
    """Prompt-only forwards over an MCQ benchmark file (TSV layout), grouped by category."""
    from mmoe.eval.prompts import user_message
    from mmoe.eval.tsv import load_benchmark
    from mmoe.model.processor import MMoEProcessor
    from mmoe.tokenization.templates import Turn

    bench = load_benchmark(path)
    rows = bench.rows if limit is None else bench.rows[:limit]
    processor = MMoEProcessor.from_model(model)
    by_category: dict[str, list] = defaultdict(list)
    for row in rows:
        by_category[row.category or "-"].append(row)
    collector = Collector()
    for category, members in sorted(by_category.items()):
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            conversations = [[Turn("user", user_message(row, style, processor.image_token))] for row in chunk]
            batch = processor.prompts(conversations, [row.load_images() for row in chunk])
            languages = torch.tensor([language_id(row.language) for row in chunk])
            batch["language_ids"] = languages[:, None].expand_as(batch["input_ids"]).contiguous()
            collector.add(category, _forward(model, batch), len(chunk))
    return collector
