"""Every data_prep recipe validates against the prep schema; data_root resolves relative paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmoe.config.errors import ConfigError
from mmoe.data.config import load_prep_config, parse_prep_config

RECIPES = sorted((Path(__file__).resolve().parents[2] / "data_prep").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_validates(recipe):
    cfg = load_prep_config(recipe, ["data_root=/data"])
    assert cfg.sources


def test_unknown_source_key_names_the_closest():
    with pytest.raises(ConfigError, match=r"sources.0.imge_root' \(did you mean 'image_root'\?\)"):
        parse_prep_config({"sources": [{"type": "llava", "path": "x.json", "imge_root": "imgs"}]})


def test_data_root_and_synthetic_script(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "data_prep" / "synthetic.py"
    done = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--n", "24", "--bench", "8"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "prepared" / "manifest.json").exists() and (tmp_path / "bench" / "mmmb_cn.tsv").exists()
    from mmoe.data.prep import prepare

    cfg = parse_prep_config({
        "data_root": str(tmp_path),
        "sources": [{"type": "llava", "path": "raw/train.json", "image_root": "raw"}],
        "tokenizer": {"tokens_per_image": 16},
        "langid": {"enabled": False},
    })
    manifest = prepare(cfg, tmp_path / "again", progress=False)
    assert manifest["kept"] == 24 and manifest["sources"]["llava"]["image_root"] == str((tmp_path / "raw").resolve())
