"""Run under ``deepspeed --num_gpus 2`` by test_distributed.py: train each recipe a few steps on CPU ranks
(rank 1 sees no image at all) and write per-rank losses and a parameter checksum as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmoe.config import load_config  # noqa: E402
from mmoe.train.loop import train  # noqa: E402
from tests.train.toydata import toy_factory  # noqa: E402


def checksum(model, zero_stage: int) -> float:
    import deepspeed

    params = list(model.parameters())
    if zero_stage == 3:
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            return float(sum(p.double().sum() for p in params))
    return float(sum(p.double().sum() for p in params))


def main(out_dir: str, zero: str, recipes: list[str]) -> None:
    results = {}
    for spec in recipes:
        name, path, trainable = spec.split(":")
        cfg = load_config(path, [
            f"train.output_dir={out_dir}/{zero}-{name}", "train.max_steps=3", "train.micro_batch_size=4",
            f"train.deepspeed=configs/deepspeed/{zero}.json", "train.resume=none", "train.progress=false",
            "train.report_to=[]", f"train.stage.trainable=[{trainable}]", "train.lr=1e-3",
        ])
        captured = {}

        def factory(cfg, model, rank, world):
            captured["model"] = model
            return toy_factory(cfg, model, rank, world, n=64, no_image_rank=1)

        result = train(cfg, factory)
        results[name] = {"history": result.history, "checksum": checksum(captured["model"], 3 if zero == "zero3" else 2)}
    rank = torch.distributed.get_rank()
    Path(out_dir, f"{zero}-rank{rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--local_rank")]
    main(args[0], args[1], args[2:])
