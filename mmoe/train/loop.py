"""The training loop: stage -> DeepSpeed engine -> resume -> steps (logging, validation, non-finite guard, checkpoints)."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import warnings

import torch

from mmoe.config.errors import ConfigError
from mmoe.config.schema import MMoEConfig
from mmoe.data.collate import model_inputs
from mmoe.errors import MMoEError
from mmoe.model.checkpoint import load_weights
from mmoe.train.checkpoint import export_model, latest_checkpoint, load_checkpoint, resolve_resume, save_checkpoint
from mmoe.train.distributed import all_true, init_distributed
from mmoe.train.engine import build_engine
from mmoe.train.metrics import MetricsLogger
from mmoe.train.reporters import require_wandb
from mmoe.train.resume_check import apply_optimizer_settings, check_changes, recipe_changes, record_resume
from mmoe.train.roma import build_roma
from mmoe.train.router_lens import write_lens_selection
from mmoe.train.stages import apply_stage, describe_stage, optimizer_groups
from mmoe.train.validation import validation_loss


class NonFiniteError(MMoEError):
    """A NaN/inf loss or gradient; names the step, the batch's sample ids and the last good checkpoint."""


@dataclass
class TrainResult:
    output_dir: Path
    step: int
    loss: float
    model_dir: Path
    history: list[float]


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _in_order(loader, device: torch.device, batch_size: int):
    """Every training sample once, on the device (RoMA's index pass, Router Lens' counts)."""
    return (_to_device(batch, device) for batch in loader.in_order(batch_size))


def _mean_across_ranks(value: torch.Tensor) -> float:
    """Mean over ranks, reduced on the tensor's own device (NCCL needs GPU tensors)."""
    value = value.detach().float().reshape(1).clone()
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(value)
        value /= torch.distributed.get_world_size()
    return float(value)


def _router_summary(stats: dict[str, dict[str, torch.Tensor]]) -> dict:
    return {layer: layer_stats for layer, layer_stats in stats.items() if layer_stats}


def build_training_model(cfg: MMoEConfig):
    from mmoe.model import build_model

    model = build_model(cfg)
    if cfg.train.init_from:
        load_weights(model, cfg.train.init_from, cfg.train.init_groups)
    return model


def _resume(cfg: MMoEConfig, engine, optimizer, scheduler, groups: list[dict], loader, rank: int, world: int) -> int:
    """Find, check, announce and restore the checkpoint ``train.resume`` names; return its step (0: fresh)."""
    tcfg = cfg.train
    output_dir = Path(tcfg.output_dir)
    point = resolve_resume(tcfg.resume, output_dir, rank, tcfg.resume_trust_pickle)
    if point is None:
        return 0
    current = cfg.model_dump(mode="json")
    if point.recipe is None:
        changes = []
        warnings.warn(f"resume: {point.path} holds no saved recipe; the recipe cannot be compared with it")
    else:
        changes = recipe_changes(point.recipe, current, point.world_size, world)
    check_changes(changes, tcfg.resume_changes, point.path)
    client = load_checkpoint(engine, point, rank, tcfg.resume_trust_pickle)
    if changes:
        apply_optimizer_settings(optimizer, scheduler, groups, tcfg.betas)
    loader.load_state_dict(client["data"])
    if rank == 0:
        print(f"resuming from {point.path} (step {point.step})"
              + (f" with changes: {'; '.join(changes)}" if changes else ""), file=sys.stderr)
        record_resume(output_dir, {"step": point.step, "checkpoint": str(point.path), "changes": changes,
                                   "passed_over": point.skipped, "trusted_pickle": tcfg.resume_trust_pickle})
    return int(client["step"])


def total_steps(epochs: float, batches_per_epoch: int, accumulation: int) -> int:
    """Optimizer steps in ``epochs`` passes over this rank's batches (a partial last step counts)."""
    return max(1, math.ceil(epochs * batches_per_epoch / accumulation))


def train(cfg: MMoEConfig, data_factory=None, eval_factory=None) -> TrainResult:
    """Run (or resume) training as the recipe says; returns where the final model went.

    ``data_factory(cfg, model, rank, world)`` gives the resumable training loader and
    ``eval_factory`` (same arguments) the ``(batch, counted)`` validation batches or None;
    both default to the recipe's ``data.train`` / ``data.eval``.
    """
    if cfg.train is None:
        raise MMoEError("the recipe has no 'train' section")
    tcfg = cfg.train
    if "wandb" in tcfg.report_to:
        require_wandb()
    output_dir = Path(tcfg.output_dir)
    rank, world = init_distributed()
    model = build_training_model(cfg)
    trainable = apply_stage(model, tcfg.stage)
    if rank == 0:
        print(describe_stage(model, tcfg.stage, trainable), flush=True)
    torch.manual_seed(tcfg.seed + rank)
    if data_factory is None:
        from mmoe.train.data import build_train_loader as data_factory
    if eval_factory is None:
        from mmoe.train.data import build_eval_batches as eval_factory
    loader = data_factory(cfg, model, rank, world)
    eval_batches = eval_factory(cfg, model, rank, world)
    if tcfg.eval_every and eval_batches is None:
        raise ConfigError(f"train.eval_every={tcfg.eval_every} needs validation data: set data.eval to prepared dataset directories")
    steps = tcfg.max_steps or total_steps(tcfg.epochs, loader.batches_per_epoch(), tcfg.gradient_accumulation_steps)
    groups = optimizer_groups(model, tcfg, trainable)
    engine, optimizer, scheduler = build_engine(model, tcfg, groups, world, steps)
    if tcfg.nonfinite == "skip" and engine.zero_optimization_stage() == 3:
        raise ConfigError("train.nonfinite=skip needs ZeRO stage 0-2 (ZeRO-3 partitions the parameters); use stop")
    roma = build_roma(tcfg.roma, model, _in_order(loader, engine.device, tcfg.micro_batch_size)) if tcfg.roma else None

    start_step = _resume(cfg, engine, optimizer, scheduler, groups, loader, rank, world)
    metrics = MetricsLogger(
        output_dir, rank=rank, total_steps=steps, start_step=start_step, report_to=tcfg.report_to,
        progress=tcfg.progress, run_config=cfg.model_dump(mode="json"), wandb_project=tcfg.wandb_project,
    )
    batches = iter(loader)
    engine.train()
    loss_value = float("nan")
    history: list[float] = []
    try:
        for step in range(start_step + 1, steps + 1):
            began = time.perf_counter()
            lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}  # the lr this step's update uses
            totals: dict[str, float] = {}
            tokens = 0
            skipped = 0
            truncated = 0
            for _ in range(tcfg.gradient_accumulation_steps):
                batch = next(batches)
                ids = batch.get("ids")
                inputs = _to_device(model_inputs(batch), engine.device)
                tokens += int(inputs["attention_mask"].sum())
                truncated += int(batch.get("num_truncated", 0))
                out = engine(**inputs, **(roma.inputs(inputs) if roma else {}))
                method_losses = roma.losses(out, ids) if roma else {}
                loss = out.loss + sum(method_losses.values()) if method_losses else out.loss
                if not all_true(bool(torch.isfinite(loss))):
                    if tcfg.nonfinite == "stop":
                        raise NonFiniteError(
                            f"non-finite loss at step {step} (batch ids {ids}); "
                            f"last good checkpoint: {latest_checkpoint(output_dir) or 'none'}"
                        )
                    skipped += 1
                    # Zero gradients for every trainable parameter: this micro-batch adds nothing.
                    engine.backward(sum(p.sum() * 0.0 for p in model.parameters() if p.requires_grad))
                else:
                    engine.backward(loss)
                    aux = {**out.aux_losses, **method_losses}
                    parts = {"loss": loss, "lm_loss": out.lm_loss, **{f"aux/{k}": v for k, v in aux.items()}}
                    for name, value in parts.items():
                        totals[name] = totals.get(name, 0.0) + _mean_across_ranks(value) / tcfg.gradient_accumulation_steps
                engine.step()
            grad_norm = engine.get_global_grad_norm()
            # fp16: an overflow is the loss scaler's signal (DeepSpeed skipped the update and lowered the scale).
            overflow = engine.fp16_enabled() and not engine.was_step_applied()
            if grad_norm is not None and not overflow and not torch.isfinite(torch.as_tensor(grad_norm)):
                raise NonFiniteError(
                    f"non-finite gradient norm at step {step}; last good checkpoint: {latest_checkpoint(output_dir) or 'none'}"
                )
            elapsed = time.perf_counter() - began
            loss_value = totals.get("loss", float("nan"))
            history.append(loss_value)
            evaluate = eval_batches is not None and ((tcfg.eval_every and step % tcfg.eval_every == 0) or step == steps)
            if step % tcfg.log_every == 0 or step == steps or evaluate:
                metrics.log(step, {
                    **totals,
                    **({"eval": {"loss": validation_loss(engine, eval_batches)}} if evaluate else {}),
                    "lr": lrs,
                    "grad_norm": float(grad_norm) if grad_norm is not None else None,
                    "tokens_per_s": tokens * world / max(elapsed, 1e-9),
                    "skipped_microbatches": skipped,
                    "truncated_samples": truncated,
                    "bad_samples": len(getattr(loader, "skipped", [])),
                    "router": _router_summary(out.router_stats),
                    **(roma.metrics() if roma else {}),
                    **({"loss_scale": float(optimizer.loss_scale), "overflow": overflow} if engine.fp16_enabled() else {}),
                })
            if (tcfg.save_every and step % tcfg.save_every == 0) or step == steps:
                client = {"step": step, "data": loader.state_dict()}
                save_checkpoint(engine, model, output_dir, step, client, tcfg.keep_last, rank)
    finally:
        metrics.close()
    if tcfg.router_lens is not None:
        write_lens_selection(tcfg.router_lens, model, _in_order(loader, engine.device, tcfg.micro_batch_size), output_dir, rank)
    model_dir = output_dir / "model"
    export_model(engine, model, model_dir, rank)
    return TrainResult(output_dir, steps, loss_value, model_dir, history)
