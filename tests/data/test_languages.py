"""Record languages are ISO 639-1 codes, and language ID chooses among candidates (MMMB's six plus the
declared ones), so a short reply is never given a language nobody wrote it in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lingua import Language
from PIL import Image

from mmoe.cli import main
from mmoe.config import ConfigError
from mmoe.data.config import parse_prep_config
from mmoe.data.langid import candidate_languages
from mmoe.data.prep import prepare
from mmoe.data.prepared import load_prepared
from mmoe.iso639_1 import ISO_639_1
from mmoe.languages import DETECTABLE, iso_language, language_id


def _llava(tmp_path: Path, records: list[dict]) -> Path:
    Image.new("RGB", (16, 16), (40, 90, 200)).save(tmp_path / "square.png")
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _record(i: int, reply: str, **fields) -> dict:
    return {"id": f"r{i}", "image": "square.png",
            "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": reply}], **fields}


def _prep(tmp_path: Path, path: Path, **extra) -> dict:
    cfg = parse_prep_config({"sources": [{"type": "llava", "path": str(path)}], "tokenizer": {"tokens_per_image": 4}, **extra})
    return prepare(cfg, tmp_path / "out", progress=False)


def test_iso_639_1_table():
    assert len(ISO_639_1) == 184 and all(len(code) == 2 and code.isalpha() and code.islower() for code in ISO_639_1)
    lingua = {language.iso_code_639_1.name.lower() for language in Language.all()}
    assert len(lingua) == 75 and lingua <= ISO_639_1 and set(DETECTABLE) == lingua  # lingua's codes, another source
    assert [iso_language(v) for v in ("pt-BR", "EN", "zh_CN", "Chinese", "cn", "yo", "ab")] == ["pt", "en", "zh", "zh", "zh", "yo", "ab"]
    assert [iso_language(v) for v in ("klingon", "tlh", "por", "und", "x", "")] == [None] * 6


def test_records_with_a_language_outside_iso_639_1_are_rejected_and_the_rest_kept(tmp_path):
    languages = ["pt", "klingon", "pt-BR", "tlh", "EN", "por", 5, "", None, "zh-CN"]
    records = [_record(i, f"O quadrado azul número {i} está no centro da imagem.", **({} if lang is None else {"language": lang}))
               for i, lang in enumerate(languages)]
    records[9]["conversations"][1]["value"] = "图片中间有一个蓝色的正方形。"
    manifest = _prep(tmp_path, _llava(tmp_path, records))
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert manifest["read"] == 10 and manifest["kept"] == 6 and manifest["rejected"] == 4
    assert manifest["rejected_by_reason"] == {"malformed_record": 1, "unknown_language": 3}
    by_line = {e["line"]: e for e in report}
    assert sorted(by_line) == [1, 3, 5, 6]
    for line, value in ((1, "klingon"), (3, "tlh"), (5, "por")):
        entry = by_line[line]
        assert entry["reason"] == "unknown_language" and entry["file"].endswith("data.jsonl") and entry["id"] == f"r{line}"
        assert entry["detail"] == f"field 'language' is {value!r}, not an ISO 639-1 language code (two letters, such as 'pt')"
    assert by_line[6]["detail"] == "field 'language' must be a string, got int"
    kept = load_prepared(tmp_path / "out").records
    assert dict(zip(kept["id"], kept["language"])) == {"r0": "pt", "r2": "pt", "r4": "en", "r7": "pt", "r8": "pt", "r9": "zh"}


def test_captions_language_column_is_checked(tmp_path):
    Image.new("RGB", (16, 16), (40, 90, 200)).save(tmp_path / "square.png")
    path = tmp_path / "caps.tsv"
    path.write_text("image\tcaption\tlanguage\nsquare.png\tA blue square.\ten\nsquare.png\tUn carré bleu.\tfrançais\n", encoding="utf-8")
    cfg = parse_prep_config({"sources": [{"type": "captions", "path": str(path)}], "tokenizer": {"tokens_per_image": 4}})
    manifest = prepare(cfg, tmp_path / "out", progress=False)
    (entry,) = json.loads((tmp_path / "out" / "report.json").read_text())
    assert manifest["kept"] == 1 and entry["reason"] == "unknown_language" and "'français'" in entry["detail"]


def test_a_declared_source_language_outside_iso_639_1_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"sources\.0\.llava\.language.*'klingon' is not an ISO 639-1 language code"):
        parse_prep_config({"sources": [{"type": "llava", "path": "x.jsonl", "language": "klingon"}]})
    assert parse_prep_config({"sources": [{"type": "llava", "path": "x.jsonl", "language": "pt_BR"}]}).sources[0].language == "pt"


@pytest.mark.parametrize("langid, expected", [
    ({}, "pt"),
    ({"languages": "all"}, "und"),  # no language of the 75 is confident
    ({"languages": "all", "min_confidence": 0.0}, "yo"),  # lingua's best guess over all 75: the old default
])
def test_a_short_portuguese_reply_is_portuguese_not_yoruba(tmp_path, langid, expected):
    """Over all 75 lingua languages ``É o pé.`` and ``É o pó.`` came out Yoruba, and the router statistics
    then carried ``yo``; among the default candidates they are Portuguese."""
    path = _llava(tmp_path, [_record(0, "É o pé."), _record(1, "É o pó.")])
    manifest = _prep(tmp_path, path, langid=langid)
    assert manifest["languages"] == {expected: 2} and manifest["detected_languages"] == {expected: 2}
    records = load_prepared(tmp_path / "out").records
    assert [language_id(code) for code in records["language"]] == [language_id(expected)] * 2  # what routing statistics see
    assert manifest["langid_candidates"] == (sorted(DETECTABLE) if langid else ["ar", "en", "pt", "ru", "tr", "zh"])


def test_texts_lingua_cannot_decide_are_und_and_counted(tmp_path, capsys):
    # "Sim." is pt 0.41 vs tr 0.38 among the six (under min_confidence 0.5); "Ok" has two letters
    path = _llava(tmp_path, [_record(0, "Sim."), _record(1, "Ok"), _record(2, "12345"), _record(3, "O quadrado é azul.")])
    assert main(["prep", "--source", "llava", "--input", str(path), "--out", str(tmp_path / "out"), "--no-progress",
                 "tokenizer.tokens_per_image=4"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\nlengths measured")[0])
    assert summary["languages"] == {"pt": 1, "und": 3} and summary["undetermined"] == 3
    assert main(["data", "stats", str(tmp_path / "out")]) == 0
    assert "language ID among ar en pt ru tr zh: 3 records undetermined (und)" in capsys.readouterr().out


def test_candidates_are_mmmb_plus_declared_languages(tmp_path):
    cfg = parse_prep_config({"sources": [
        {"type": "llava", "path": "a.jsonl", "language": "de"},
        {"type": "mcq_tsv", "path": "mmbench_dev_fr.tsv"},
        {"type": "llava", "path": "b.jsonl", "language": "ab"},  # ISO 639-1, but lingua cannot detect it
    ]})
    assert candidate_languages(cfg) == ("ar", "de", "en", "fr", "pt", "ru", "tr", "zh")
    assert candidate_languages(cfg.model_copy(update={"langid": cfg.langid.model_copy(update={"languages": ["en", "es"]})})) == ("de", "en", "es", "fr")
    with pytest.raises(ConfigError, match="lingua cannot detect xx"):
        parse_prep_config({"sources": [{"type": "llava", "path": "a.jsonl"}], "langid": {"languages": ["en", "xx"]}})


def test_cli_langid_languages(tmp_path, capsys):
    path = _llava(tmp_path, [_record(0, "É o pé.")])
    assert main(["prep", "--source", "llava", "--input", str(path), "--out", str(tmp_path / "out"), "--no-progress",
                 "--langid-languages", "all", "langid.min_confidence=0", "tokenizer.tokens_per_image=4"]) == 0
    assert json.loads(capsys.readouterr().out.split("\nlengths measured")[0])["languages"] == {"yo": 1}

