"""Run under ``deepspeed --num_gpus 2`` by test_distributed.py: train each run of a JSON run list on CPU
ranks, where the ranks see different numbers of images per step (0, 1 or 2 of a micro-batch of 2), and
write per-rank losses, a parameter checksum and how much each parameter group moved as JSON.

A run that hangs dumps every thread's stack and exits (``faulthandler``), so a ZeRO-3 hang fails the test.
"""

from __future__ import annotations

import faulthandler
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmoe.config import load_config  # noqa: E402
from mmoe.model.parts import parameter_groups  # noqa: E402
from mmoe.model.processor import MMoEProcessor  # noqa: E402
from mmoe.train.loader import ResumableLoader  # noqa: E402
from mmoe.train.loop import train  # noqa: E402
from tests.train.toydata import ColourDataset, collate  # noqa: E402


def schedule_plan(dataset: ColourDataset, schedule: list[list[int]], rank: int, batch_size: int):
    """Step ``s`` of this rank holds ``schedule[s][rank]`` image samples, the rest text-only samples."""
    images = [i for i in range(len(dataset)) if dataset.has_image(i)]
    texts = [i for i in range(len(dataset)) if not dataset.has_image(i)]
    batches = []
    for step, counts in enumerate(schedule):
        k = counts[rank]
        start = (step * len(counts) + rank) * batch_size
        batches.append([images[(start + j) % len(images)] for j in range(k)] + [texts[(start + j) % len(texts)] for j in range(batch_size - k)])
    return lambda epoch: batches


def gathered(params: list[torch.nn.Parameter], zero_stage: int) -> dict[int, torch.Tensor]:
    """Full copies of ``params`` (ZeRO-3 holds only this rank's shard of each)."""
    import deepspeed

    if zero_stage == 3:
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            return {id(p): p.detach().double().clone() for p in params}
    return {id(p): p.detach().double().clone() for p in params}


def group_changes(names: dict[str, torch.nn.Parameter], groups: dict[str, str], before: dict[str, torch.Tensor], after: dict[int, torch.Tensor]) -> dict:
    """Per group: the names of its parameter tensors that did not change, and ``|after - before|_1 / |before|_1``."""
    out: dict[str, dict] = {}
    for name, param in names.items():
        entry = out.setdefault(groups[name], {"unchanged": [], "delta": 0.0, "norm": 0.0})
        diff = (after[id(param)] - before[name]).abs().sum().item()
        if diff == 0:
            entry["unchanged"].append(name)
        entry["delta"] += diff
        entry["norm"] += before[name].abs().sum().item()
    return {g: {"unchanged": e["unchanged"], "tensors": sum(groups[n] == g for n in names), "relative": e["delta"] / max(e["norm"], 1e-12)} for g, e in out.items()}


def run_one(run: dict, out_dir: str, zero: str, schedule: list[list[int]], hang_s: float) -> dict:
    zero_stage = 3 if zero == "zero3" else 2
    overrides = [o.replace("{out}", out_dir).replace("{zero}", zero) for o in run.get("overrides", [])]
    cfg = load_config(run["recipe"], [
        *overrides, f"train.output_dir={out_dir}/{zero}-{run['name']}", f"train.max_steps={len(schedule)}",
        "train.micro_batch_size=2", f"train.deepspeed=configs/deepspeed/{zero}.json", "train.resume=none",
        "train.progress=false", "train.report_to=[]", f"train.stage.trainable=[{run['trainable']}]",
        "train.lr=1e-3", "train.weight_decay=0.0", "train.warmup_ratio=0.0",
    ])
    captured: dict = {}

    def factory(cfg, model, rank, world):
        captured["names"] = dict(model.named_parameters())
        captured["groups"] = parameter_groups(model)
        captured["before"] = {n: p.detach().double().clone() for n, p in captured["names"].items()}
        processor = MMoEProcessor.from_model(model)
        dataset = ColourDataset(processor, 40)
        return ResumableLoader(dataset, collate(processor), schedule_plan(dataset, schedule, rank, cfg.train.micro_batch_size))

    faulthandler.dump_traceback_later(hang_s, exit=True)
    result = train(cfg, factory)
    faulthandler.cancel_dump_traceback_later()
    names = captured["names"]
    after = gathered(list(names.values()), zero_stage)
    return {
        "history": result.history,
        "checksum": float(sum(t.sum() for t in after.values())),
        "groups": group_changes(names, captured["groups"], captured["before"], after),
    }


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    out_dir, zero = spec["out_dir"], spec["zero"]
    results = {run["name"]: run_one(run, out_dir, zero, spec["schedule"], spec["hang_s"]) for run in spec["runs"]}
    rank = torch.distributed.get_rank()
    Path(out_dir, f"{zero}-rank{rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if not a.startswith("--local_rank")][0])
