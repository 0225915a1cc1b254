"""Language identification (lingua) and language balancing."""

from __future__ import annotations

import json

import numpy as np

from mmoe.data.balance import keep_mask, quotas
from mmoe.data.config import BalanceConfig, parse_prep_config
from mmoe.data.langid import LanguageTagger
from mmoe.data.prep import prepare
from mmoe.data.prepared import load_prepared
from mmoe.languages import LANGUAGES, language_id, normalize_language


def test_lingua_separates_close_languages():
    tagger = LanguageTagger(candidates=["en", "zh", "pt", "es", "ar", "fa", "tr", "az", "ru", "mk", "bg", "uk"])
    texts = [
        "Qual é a cor do quadrado que aparece na imagem?",
        "Какого цвета квадрат, который изображён на картинке?",
        "Која е бојата на квадратот што се гледа на сликата?",
        "图片中的正方形是什么颜色？",
        "Resimde görünen karenin rengi nedir?",
        "ما لون المربع الذي يظهر في الصورة؟",
        "What colour is the square shown in the picture?",
        "12345",
    ]
    assert tagger.detect(texts) == ["pt", "ru", "mk", "zh", "tr", "ar", "en", "und"]


def test_declared_language_wins_and_mismatch_is_counted():
    tagger = LanguageTagger()
    assert tagger.resolve("zh-CN", "en") == "zh"
    assert tagger.resolve(None, "pt") == "pt"
    assert tagger.resolve("cn", "zh") == "zh"
    assert tagger.resolve("de", "en") == "de"  # not a candidate: detection could not have found it, no mismatch
    assert dict(tagger.mismatches) == {"zh->en": 1}


def test_language_table():
    assert LANGUAGES[:6] == ("en", "zh", "pt", "ar", "tr", "ru") and LANGUAGES[-1] == "und"
    assert language_id("cn") == 1 and language_id("xx") == len(LANGUAGES) - 1
    assert normalize_language("pt_BR") == "pt"


def test_quotas_caps_and_ratios():
    counts = {"en": 1000, "zh": 300, "pt": 50}
    assert quotas(counts, BalanceConfig(caps={"en": 200})) == {"en": 200, "zh": 300, "pt": 50}
    q = quotas(counts, BalanceConfig(ratios={"en": 2, "zh": 1}))
    assert q == {"en": 600, "zh": 300, "pt": 50}
    keys = np.arange(1000, dtype=np.uint64)
    langs = np.array(["en"] * 700 + ["zh"] * 300)
    keep = keep_mask(langs, keys, {"en": 100, "zh": 300}, seed=1)
    assert keep[:700].sum() == 100 and keep[700:].all()
    assert not np.array_equal(keep, keep_mask(langs, keys, {"en": 100, "zh": 300}, seed=2))


def test_prep_with_caps_on_synthetic(tmp_path):
    cfg = parse_prep_config({
        "sources": [{"type": "synthetic", "n": 60, "seed": 3, "path": str(tmp_path / "raw")}],
        "tokenizer": {"tokens_per_image": 16},
        "balance": {"caps": {"en": 4, "zh": 5}},
        "langid": {"languages": ["en", "zh", "pt", "ar", "tr", "ru"]},
        "shard_size": 16,
    })
    manifest = prepare(cfg, tmp_path / "out", progress=False)
    assert manifest["languages"] == {"ar": 10, "en": 4, "pt": 10, "ru": 10, "tr": 10, "zh": 5}
    assert manifest["balanced_out"] == 11 and manifest["kept"] == 49 and manifest["read"] == 60
    assert manifest["language_mismatches"]["count"] == 0
    assert len(manifest["shards"]) == 4 and not (tmp_path / "out" / ".staging").exists()
    records = load_prepared(tmp_path / "out").records
    assert len(records) == 49
    assert records["position"] == sorted(records["position"])  # input order kept
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == []
