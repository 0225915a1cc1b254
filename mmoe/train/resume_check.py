"""What changed between the recipe a checkpoint was trained with and the one resuming it.

A resumed run restores the optimizer and scheduler state, so a changed learning rate would silently keep
the old value while the new recipe is saved as if it ran. Changes to fields that shape the model or the
optimisation are therefore refused with the list of differences, unless ``train.resume_changes=allow``;
then the new optimiser settings are written into the restored state so that what runs is what is saved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmoe.config.errors import ConfigError

# train.* fields that change what the optimiser does (run length, logging and checkpoint cadence do not).
OPTIMISATION_FIELDS = (
    "stage", "lr", "weight_decay", "betas", "warmup_ratio", "schedule", "max_grad_norm",
    "micro_batch_size", "gradient_accumulation_steps", "precision", "deepspeed", "seed",
)
RESUMES_FILE = "resumes.jsonl"
_ABSENT = "(absent)"


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}"))
        return out or {prefix: {}}
    return {prefix: list(value) if isinstance(value, tuple) else value}


def _checked(recipe: dict) -> dict[str, Any]:
    train = recipe.get("train") or {}
    out = _flatten(recipe.get("model") or {}, "model")
    for name in OPTIMISATION_FIELDS:
        out.update(_flatten(train.get(name, _ABSENT), f"train.{name}"))
    return out


def recipe_changes(saved: dict, current: dict, saved_world: int | None = None, world: int | None = None) -> list[str]:
    """``key: old -> new`` for every model or optimisation field that differs (and the data-parallel size)."""
    old, new = _checked(saved), _checked(current)
    changes = [
        f"{key}: {json.dumps(old.get(key, _ABSENT))} -> {json.dumps(new.get(key, _ABSENT))}"
        for key in sorted(set(old) | set(new))
        if old.get(key, _ABSENT) != new.get(key, _ABSENT)
    ]
    if saved_world is not None and world is not None and saved_world != world:
        changes.append(f"data-parallel ranks: {saved_world} -> {world}")
    return changes


def check_changes(changes: list[str], policy: str, checkpoint: Path) -> None:
    """Refuse ``changes`` unless the policy allows them."""
    if changes and policy != "allow":
        raise ConfigError(
            f"resuming {checkpoint} with a recipe that differs from the one it was trained with:\n  - "
            + "\n  - ".join(changes)
            + "\nrestore those values, start a new train.output_dir (train.init_from=CHECKPOINT/model keeps the "
            "weights), or set train.resume_changes=allow to continue with the new values"
        )


def apply_optimizer_settings(optimizer: Any, scheduler: Any, groups: list[dict], betas: tuple[float, float]) -> None:
    """Write this recipe's per-group lr, weight decay and betas over the restored optimizer and scheduler
    state, and set the current lr from the schedule at the restored step."""
    wanted = {group["name"]: group for group in groups}
    for group in optimizer.param_groups:
        new = wanted[group["name"]]
        group.update(weight_decay=new["weight_decay"], betas=tuple(betas), initial_lr=new["lr"])
    scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    for group, factor, base in zip(optimizer.param_groups, scheduler.lr_lambdas, scheduler.base_lrs):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def record_resume(output_dir: Path, entry: dict) -> None:
    """Append what a resume did (checkpoint, step, passed-over checkpoints, accepted changes)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / RESUMES_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")
