"""Language balancing by caps and ratios, deterministic for a seed.

Quotas: each language first gets ``min(count, cap)``; languages listed in ``ratios`` are then cut
to the largest total that keeps their shares exact. Which records stay is decided by a seeded hash
of each record's fingerprint, so the choice is a uniform sample that does not depend on order.
"""

from __future__ import annotations

import math

import numpy as np

from mmoe.data.config import BalanceConfig
from mmoe.languages import normalize_language

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def quotas(counts: dict[str, int], cfg: BalanceConfig) -> dict[str, int]:
    caps = {normalize_language(k) or k: v for k, v in cfg.caps.items()}
    ratios = {normalize_language(k) or k: v for k, v in cfg.ratios.items()}
    out = {lang: min(n, caps.get(lang, n)) for lang, n in counts.items()}
    listed = {lang: r for lang, r in ratios.items()}
    if listed:
        total_ratio = sum(listed.values())
        shares = {lang: r / total_ratio for lang, r in listed.items()}
        total = min(out.get(lang, 0) / share for lang, share in shares.items())
        for lang, share in shares.items():
            out[lang] = min(out.get(lang, 0), math.floor(total * share + 1e-9))
    return out


def selection_scores(keys: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of ``key + seed``: a uniform, seeded ranking of records."""
    with np.errstate(over="ignore"):
        z = (keys.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)) & _MASK
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def keep_mask(languages: np.ndarray, keys: np.ndarray, quota: dict[str, int], seed: int) -> np.ndarray:
    """True for the records that stay: per language, the ``quota`` lowest scores."""
    scores = selection_scores(keys, seed)
    keep = np.zeros(len(keys), dtype=bool)
    for lang in np.unique(languages):
        idx = np.nonzero(languages == lang)[0]
        n = quota.get(str(lang), len(idx))
        if n >= len(idx):
            keep[idx] = True
        elif n > 0:
            keep[idx[np.argsort(scores[idx], kind="stable")[:n]]] = True
    return keep
