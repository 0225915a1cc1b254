"""Look inside a prepared dataset: one record as the model sees it, and the manifest's statistics."""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any

from mmoe.data.config import TokenizerSpec
from mmoe.data.prepared import Prepared
from mmoe.model.splice import IGNORE_INDEX

LEGEND = "legend: [[...]] supervised (carries labels), <image k: N tokens> visual-token positions, the rest is context"


def manifest_spec(manifest: dict[str, Any]) -> TokenizerSpec:
    """The tokenizer a prep measured with (recorded in its manifest)."""
    recorded = manifest.get("tokenizer") or manifest["config"]["tokenizer"]
    return TokenizerSpec(**{k: v for k, v in recorded.items() if k in TokenizerSpec.model_fields})


def render_record(prepared: Prepared, index: int, processor, tokenizer_name: str) -> str:
    """Record ``index`` rendered with the chat template: supervised spans in ``[[ ]]``, images at their token positions."""
    from mmoe.tokenization.templates import Turn

    if not 0 <= index < len(prepared):
        raise IndexError(f"--index {index} is out of range: {prepared.path} holds {len(prepared)} records (0..{len(prepared) - 1})")
    row = prepared.records[index]
    encoded = processor.encode([Turn(t["role"], t["content"]) for t in row["conversations"]])
    images = [im["path"] or f"(embedded, {len(im['bytes'] or b'')} bytes)" for im in row["images"]]
    header = [
        f"record {index} of {len(prepared)}: id {row['id']}, source {row['source']} (input position {row['position']}), "
        f"language {row['language']}",
        f"{len(encoded.input_ids)} tokens ({sum(label != IGNORE_INDEX for label in encoded.labels)} supervised), "
        f"{encoded.num_images} image(s): {', '.join(images) or 'none'}",
        f"template {processor.template}, tokenizer {tokenizer_name}",
        LEGEND,
        "",
    ]
    pieces, image = [], 0
    pairs = zip(encoded.input_ids, encoded.labels)
    for (is_image, supervised), run in groupby(pairs, key=lambda p: (p[0] == processor.image_token_id, p[1] != IGNORE_INDEX)):
        ids = [token for token, _ in run]
        if is_image:
            for _ in range(len(ids) // processor.tokens_per_image):
                image += 1
                pieces.append(f"<image {image}: {processor.tokens_per_image} tokens>")
            continue
        text = processor.tokenizer.decode(ids)
        pieces.append(f"[[{text}]]" if supervised else text)
    return "\n".join(header) + "".join(pieces)


def _share(counts: dict[str, int], total: int) -> list[str]:
    return [f"  {name:<16}{n:>10}  {100 * n / max(total, 1):5.1f}%" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def format_stats(manifest: dict[str, Any]) -> str:
    """Languages, sources, lengths and rejections of a prepared dataset, from its manifest."""
    kept = manifest["kept"]
    lines = [f"{kept} records kept of {manifest['read']} read ({manifest['rejected']} rejected, "
             f"{manifest['balanced_out']} balanced out)", "", "languages:"]
    lines += _share(manifest["languages"], kept)
    lines += ["", f"  {'sources:':<16}{'read':>10}{'kept':>10}{'rejected':>10}"]
    for name, info in manifest["sources"].items():
        lines.append(f"  {name:<16}{info['read']:>10}{info['kept']:>10}{info['rejected']:>10}  ({info['type']})")
    tokens = manifest["tokens"]
    if tokens.get("count"):
        lines += ["", f"tokens per record ({tokens['tokens_per_image']} per image): mean {tokens['mean']}, "
                      f"p50 {tokens['p50']}, p90 {tokens['p90']}, p99 {tokens['p99']}, max {tokens['max']}; total {tokens['total']}"]
    if "tokenizer" in manifest:
        tok = manifest["tokenizer"]
        lines.append(f"measured with tokenizer {tok['name']}, template {tok['chat_template']} ({tok['from']})")
    if manifest["rejected_by_reason"]:
        lines += ["", "rejected by reason: " + json.dumps(manifest["rejected_by_reason"])]
    if manifest.get("langid_candidates"):
        lines.append(f"language ID among {' '.join(manifest['langid_candidates'])}: "
                     f"{manifest.get('undetermined', 0)} records undetermined (und)")
    if manifest.get("image_notes"):
        lines.append("images converted on decoding: " + json.dumps(manifest["image_notes"]))
    mismatches = manifest.get("language_mismatches", {})
    if mismatches.get("count"):
        lines.append(f"declared vs detected language mismatches: {mismatches['count']} {json.dumps(mismatches['pairs'])}")
    return "\n".join(lines)
