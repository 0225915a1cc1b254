"""Source readers: ShareGPT, captions, Hugging Face datasets, VLMEvalKit MCQ TSV, JSON streaming."""

from __future__ import annotations

import json

import datasets
import pandas as pd
from PIL import Image

from mmoe.data.jsonstream import iter_json
from mmoe.data.prep import prepare
from mmoe.data.prepared import load_prepared
from mmoe.data.config import parse_prep_config
from mmoe.data.records import Failure
from mmoe.data.sources import read_captions, read_hf, read_mcq_tsv, read_sharegpt
from mmoe.data.synthetic import generate_benchmarks


def _img(path, colour=(0, 0, 255)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 24), colour).save(path)


def test_sharegpt_messages_parts_and_roles(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": [{"type": "image", "image": "a.png"}, {"type": "text", "text": "Qué es?"}]},
                      {"role": "assistant", "content": "Un cuadrado."}]},
        {"id": 7, "images": ["a.png"], "messages": [{"role": "system", "content": "Be brief."},
                                                    {"role": "user", "content": "Describe."}, {"role": "assistant", "content": "Blue."}]},
        {"messages": [{"role": "wizard", "content": "x"}]},
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    out = list(read_sharegpt(path, "sg"))
    assert out[0].images[0].path == "a.png" and out[0].conversations[0].content == "<image>\nQué es?"
    assert out[0].id == "chat:0"
    assert out[1].id == "7" and out[1].conversations[1].content == "<image>\nDescribe."  # placeholder added
    assert isinstance(out[2], Failure) and "unknown role" in out[2].error.detail


def test_captions_csv_and_jsonl(tmp_path):
    _img(tmp_path / "i.png")
    (tmp_path / "c.csv").write_text("image,caption\ni.png,A blue square.\ni.png,\n", encoding="utf-8")
    recs = list(read_captions(tmp_path / "c.csv", "cap", prompt="Describe the image."))
    assert recs[0].conversations[0].content == "<image>\nDescribe the image."
    assert recs[0].conversations[1].content == "A blue square." and recs[1].position == 1
    (tmp_path / "c.jsonl").write_text(json.dumps({"url": "i.png", "text": "Quadrado azul."}) + "\n", encoding="utf-8")
    recs = list(read_captions(tmp_path / "c.jsonl", "cap", image_column="url", caption_column="text", language="pt"))
    assert recs[0].language == "pt" and recs[0].images[0].path == "i.png"


def test_hf_dataset_with_image_column(tmp_path):
    _img(tmp_path / "x.png")
    ds = datasets.Dataset.from_dict({
        "image": [str(tmp_path / "x.png"), str(tmp_path / "x.png")],
        "conversations": [
            [{"from": "human", "value": "<image>\nColour?"}, {"from": "gpt", "value": "Blue."}],
            [{"from": "human", "value": "Shape?"}, {"from": "gpt", "value": "Square."}],
        ],
    }).cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "hfds"))
    recs = list(read_hf(str(tmp_path / "hfds"), "hf"))
    assert all(r.images[0].data for r in recs)  # undecoded bytes, validated later like files
    assert recs[1].conversations[0].content == "<image>\nShape?"
    cfg = parse_prep_config({"sources": [{"type": "hf", "path": str(tmp_path / "hfds")}], "tokenizer": {"tokens_per_image": 4}})
    manifest = prepare(cfg, tmp_path / "out", progress=False)
    assert manifest["kept"] == 2 and load_prepared(tmp_path / "out").records["images"][0][0]["bytes"]


def test_mcq_tsv_reader_on_vlmevalkit_layout(tmp_path):
    paths = generate_benchmarks(tmp_path, n_per_language=8, seed=5, languages=["ru"])
    mmbench = next(p for p in paths if p.name == "mmbench_dev_ru.tsv")
    recs = list(read_mcq_tsv(mmbench, "mmb"))
    table = pd.read_csv(mmbench, sep="\t")
    assert len(recs) == len(table) == 32 and not any(isinstance(r, Failure) for r in recs)
    assert recs[0].language == "ru" and recs[0].conversations[0].content.startswith("<image>\n")
    assert recs[0].conversations[0].content.endswith("Ответьте буквой варианта из предложенных вариантов напрямую.")
    assert recs[8].images[0].data == recs[0].images[0].data  # circular copy resolves the image pointer
    assert recs[0].conversations[1].content == table.loc[0, "answer"]


def test_mcq_tsv_reports_each_bad_row_and_keeps_the_rest(tmp_path):
    path = generate_benchmarks(tmp_path, n_per_language=4, seed=5, languages=["en"])[0]
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table.loc[0, "image"] = "@@not-base64@@" * 10  # row 1: undecodable image
    table.loc[1, "answer"] = "Z"  # row 2: answer is not an option letter
    table.loc[3, "index"] = table.loc[2, "index"]  # row 4: index repeats row 3
    table.to_csv(path, sep="\t", index=False)
    items = list(read_mcq_tsv(path, "mmmb"))
    failures = {item.position: item.error for item in items if isinstance(item, Failure)}
    assert len(items) == 4 and set(failures) == {0, 1, 3}
    assert failures[0].reason.value == "undecodable_image" and "row 1" in failures[0].detail and "column 'image'" in failures[0].detail
    assert failures[1].reason.value == "malformed_record" and "row 2" in failures[1].detail and "column 'answer'" in failures[1].detail
    assert failures[3].reason.value == "malformed_record" and "repeats row 3" in failures[3].detail
    assert items[2].language == "en" and items[2].conversations[1].content == table.loc[2, "answer"]


def test_json_array_streams_across_chunks(tmp_path, monkeypatch):
    import mmoe.data.jsonstream as js

    monkeypatch.setattr(js, "CHUNK", 5)
    path = tmp_path / "a.json"
    path.write_bytes('[{"id": "ü", "x": [1, {"y": "]"}]}, {"id": 2 "bad": 1}, {"id": "a,b\\"}"}, 3]'.encode())
    items = list(iter_json(path))
    assert [p for p, _ in items] == [0, 1, 2, 3]
    assert items[0][1]["id"] == "ü" and items[2][1]["id"] == 'a,b"}' and items[3][1] == 3
    assert "invalid JSON" in str(items[1][1])
