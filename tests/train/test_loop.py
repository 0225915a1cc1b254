"""The training loop: loss falls, stages freeze what they should, bad samples and NaNs are handled."""

from __future__ import annotations

import json

import pytest
import torch

from mmoe import build_model
from mmoe.config import ConfigError, load_config
from mmoe.train.loader import ResumableLoader, random_plan
from mmoe.train.loop import NonFiniteError, train
from mmoe.model.parts import parameter_groups
from mmoe.train.stages import apply_stage, optimizer_groups

from tests.conftest import CONFIGS
from tests.train.toydata import ColourDataset, WrappedLoader, collate, toy_factory

QUIET = ["train.progress=false", "train.report_to=[]", "train.resume=none", "train.micro_batch_size=8"]


def _cfg(tmp_path, *extra):
    return load_config(CONFIGS / "tiny.yaml", QUIET + [f"train.output_dir={tmp_path}", *extra])


def _metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_and_frozen_parts_stay_frozen(tmp_path):
    cfg = _cfg(tmp_path, "train.max_steps=20", "train.lr=3e-3", "train.stage.trainable=[projector,llm]",
               "train.stage.lr={projector: 1.0e-2}")
    model_box = {}

    def factory(cfg, model, rank, world):
        model_box["vision_before"] = {k: v.clone() for k, v in model.vision_tower.state_dict().items()}
        model_box["model"] = model
        return toy_factory(cfg, model, rank, world)

    result = train(cfg, factory)
    lines = _metrics(tmp_path)
    assert lines[-1]["loss"] < 0.5 * lines[0]["loss"]
    assert set(lines[0]["lr"]) == {"projector", "projector.no_decay", "llm", "llm.no_decay"}
    assert lines[0]["lr"]["projector"] > lines[0]["lr"]["llm"]
    assert all(k in lines[0] for k in ("lm_loss", "grad_norm", "tokens_per_s"))
    after = model_box["model"].vision_tower.state_dict()
    assert all(torch.equal(after[k], v) for k, v in model_box["vision_before"].items())
    assert result.model_dir.joinpath("model.safetensors").is_file()


class _Broken(ColourDataset):
    def __getitem__(self, i: int) -> dict:
        if i % 7 == 3:
            raise OSError(f"image for sample {i} is truncated")
        return super().__getitem__(i)


def test_a_bad_sample_never_stops_training(tmp_path):
    def factory(cfg, model, rank, world):
        from mmoe.model.processor import MMoEProcessor

        processor = MMoEProcessor.from_model(model)
        dataset = _Broken(processor, 64)
        return ResumableLoader(dataset, collate(processor), random_plan(64, 8, 0))

    with pytest.warns(UserWarning, match="skipping sample"):
        train(_cfg(tmp_path, "train.max_steps=4"), factory)
    assert _metrics(tmp_path)[-1]["bad_samples"] > 0


class _Poisoned(WrappedLoader):
    """The batch of step ``bad_step`` gets NaN pixels, so its loss is NaN."""

    def __init__(self, loader, bad_step: int) -> None:
        super().__init__(loader)
        self.bad = bad_step

    def __iter__(self):
        for i, batch in enumerate(self.loader, start=1):
            if i == self.bad:
                batch["pixel_values"] = torch.full_like(batch["pixel_values"], float("nan"))
            yield batch


def test_nan_loss_stops_naming_step_batch_and_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, "train.max_steps=6", "train.save_every=2")
    with pytest.raises(NonFiniteError, match=r"step 3 \(batch ids \[.*\]\); last good checkpoint: .*step-0000002"):
        train(cfg, lambda *a: _Poisoned(toy_factory(*a), 3))


def test_nan_loss_can_skip_the_step(tmp_path):
    cfg = _cfg(tmp_path, "train.max_steps=4", "train.nonfinite=skip")
    train(cfg, lambda *a: _Poisoned(toy_factory(*a), 2))
    lines = _metrics(tmp_path)
    assert [r["skipped_microbatches"] for r in lines] == [0, 1, 0, 0]
    assert all(r["loss"] == r["loss"] for r in lines if r["skipped_microbatches"] == 0)


@pytest.mark.parametrize("recipe,trainable,expected", [
    ("mole.yaml", ["experts", "routers"], {"experts", "routers"}),
    ("moma.yaml", ["experts", "routers"], {"experts", "routers"}),
    ("parrot.yaml", ["projector", "moe_projector"], {"projector", "moe_projector"}),
])
def test_stages_train_only_their_groups(recipe, trainable, expected):
    cfg = load_config(CONFIGS / recipe, ["train.max_steps=1", f"train.stage.trainable=[{','.join(trainable)}]"])
    model = build_model(cfg)
    groups = apply_stage(model, cfg.train.stage)
    assert set(groups) == expected
    declared = parameter_groups(model)
    for name, p in model.named_parameters():
        assert p.requires_grad == (declared[name] in expected), name
    assert {g["name"].split(".")[0] for g in optimizer_groups(model, cfg.train, groups)} == expected


def test_stage_naming_a_group_the_model_lacks_is_an_error():
    cfg = load_config(CONFIGS / "tiny.yaml", ["train.max_steps=1", "train.stage.trainable=[routers]"])
    with pytest.raises(ConfigError, match="no such parameters"):
        apply_stage(build_model(cfg), cfg.train.stage)


def test_stage_lr_for_a_frozen_group_is_an_error():
    with pytest.raises(ConfigError, match="not in trainable"):
        load_config(CONFIGS / "tiny.yaml", ["train.max_steps=1", "train.stage.trainable=[projector]", "train.stage.lr={llm: 1.0e-4}"])
