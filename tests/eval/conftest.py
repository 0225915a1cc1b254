"""Fixtures: MMBench/MMMB-layout TSV files built in temporary directories with real PNG images."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.eval.mmbench_files import mmbench_frame, write_tsv


@pytest.fixture
def mmbench_tsv(tmp_path: Path) -> Path:
    return write_tsv(mmbench_frame(), tmp_path / "MMBench_DEV_EN.tsv")


@pytest.fixture
def tsv_writer(tmp_path: Path):
    """Write a frame as ``name`` in the test's temporary directory."""

    def write(frame: pd.DataFrame, name: str) -> Path:
        return write_tsv(frame, tmp_path / name)

    return write


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random mmoe model saved to disk (configs/tiny.yaml)."""
    from mmoe import build_model, save_model
    from mmoe.config import load_config

    root = Path(__file__).resolve().parents[2]
    directory = tmp_path_factory.mktemp("tiny_model")
    save_model(build_model(load_config(root / "configs" / "tiny.yaml")), directory)
    return directory
