"""``mmoe analyze`` and ``mmoe plot`` on a tiny trained checkpoint: the numbers equal the router
statistics recomputed directly, and the figures are real images with labelled axes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mmoe.analysis.collect import ALL
from mmoe.analysis.curves import curve_figures, read_metrics
from mmoe.analysis.report import figures, shares
from mmoe.cli import main
from mmoe.config import load_config
from mmoe.data.collate import Collator
from mmoe.data.dataset import ConversationDataset
from mmoe.model.checkpoint import load_model
from mmoe.model.processor import MMoEProcessor
from mmoe.train.loop import train
from tests.conftest import CONFIGS
from tests.eval.mmbench_files import mmbench_frame, write_tsv
from tests.train.toydata import toy_factory

QUIET = ["train.progress=false", "train.report_to=[]", "train.resume=none", "train.micro_batch_size=4", "train.lr=1e-2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A MoMa run trained 3 steps, plus 24 prepared synthetic samples."""
    root = tmp_path_factory.mktemp("analysis")
    cfg = load_config(CONFIGS / "moma.yaml", QUIET + ["train.max_steps=3", f"train.output_dir={root / 'run'}"])
    result = train(cfg, toy_factory)
    assert main(["prep", "--source", "synthetic", "--n", "24", "--out", str(root / "prepared")]) == 0
    return root, result.model_dir


def assert_png(path):
    pixels = np.asarray(Image.open(path).convert("L"))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 5, path


def test_analyze_prepared_data_matches_direct_router_statistics(trained):
    root, model_dir = trained
    out = root / "analysis"
    assert main(["analyze", "--model", str(model_dir), "--data", str(root / "prepared"), "--out", str(out), "--batch-size", "5"]) == 0
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["categories"][ALL]["samples"] == 24 and summary["categories"]["synthetic"]["samples"] == 24

    model = load_model(model_dir)
    dataset = ConversationDataset.from_paths([str(root / "prepared")], MMoEProcessor.from_model(model), 512)
    batch = Collator(model.tokenizer.pad_token_id)([dataset[i] for i in range(24)])
    with torch.no_grad():
        stats = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "language_ids")}).router_stats
    modules = summary["categories"][ALL]["modules"]
    assert set(modules) == set(stats)
    for module, want in stats.items():
        for group in ("text", "image"):
            assert modules[module][f"{group}/tokens_per_expert"] == want[f"{group}/tokens_per_expert"].tolist()
            assert modules[module][f"{group}/num_tokens"] == float(want[f"{group}/num_tokens"])
            assert modules[module][f"{group}/router_entropy"] == pytest.approx(float(want[f"{group}/router_entropy"]), rel=1e-5)
            assert sum(modules[module][f"{group}/entropy_hist"]) == float(want[f"{group}/num_tokens"])
    report = (out / "report.md").read_text()
    first = sorted(stats)[0]
    share = shares(modules[first]["text/tokens_per_expert"])
    assert f"| {first} | " + " | ".join(f"{v:.3f}" for v in share) in report

    for name in ("usage_text.png", "usage_image.png", "languages_text.png", "entropy_image.png"):
        assert_png(out / name)
    for name, fig in figures(summary).items():
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), name


def test_analyze_a_benchmark_file_groups_by_category(trained, tmp_path):
    root, model_dir = trained
    tsv = write_tsv(mmbench_frame(), tmp_path / "MMBench_DEV_EN.tsv")
    out = tmp_path / "bench"
    assert main(["analyze", "--model", str(model_dir), "--data", str(tsv), "--out", str(out)]) == 0
    summary = json.loads((out / "analysis.json").read_text())
    categories = set(summary["categories"]) - {ALL}
    rows = mmbench_frame()
    assert categories == set(rows["category"])
    assert summary["categories"][ALL]["samples"] == len(rows)


def test_plot_draws_labelled_curves_from_metrics(trained):
    root, _ = trained
    assert main(["plot", str(root / "run")]) == 0
    records = read_metrics(root / "run")
    assert [r["step"] for r in records] == [1, 2, 3]
    for name in ("loss.png", "lr.png", "aux.png", "load_text.png", "load_image.png"):
        assert_png(root / "run" / "plots" / name)
    for name, fig in curve_figures(records).items():
        for ax in fig.axes:
            assert ax.get_xlabel() == "step" and ax.get_ylabel(), name


def test_plot_names_a_missing_metrics_file(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "metrics.jsonl not found" in capsys.readouterr().err


def test_usage_heatmap_of_a_single_expert_fits_its_labels():
    """A one-expert layer (the plain-LoRA arm of a study) with decoder-length module names: the figure
    must be wide enough for the labels, title and colour bar, or tight_layout gives up with a warning."""
    import warnings

    from mmoe.analysis.report import usage_figure

    rows = {f"llm.model.layers.{i}.mlp": [1.0] for i in range(4)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = usage_figure(rows, "")
    width, _ = fig.get_size_inches()
    assert width >= 4.0
