"""``train_step``: one optimizer step of the whole joint model (vision tower, projector, LLM) with
MoLE experts, against the same model with peft LoRA on every LLM linear and with full fine-tuning.

Reports tokens/s (real tokens of the batch, image tokens included), peak memory (see
``mmoe.bench.memory``) and on CUDA the model-FLOPs utilisation, counting per token 2N forward,
2N input gradients and 2N_trainable weight gradients over all N parameters (an upper estimate for
MoLE, whose unselected experts do not compute).
"""

from __future__ import annotations

import torch

from mmoe.bench import models
from mmoe.bench.memory import step_peak
from mmoe.bench.settings import BenchSettings
from mmoe.bench.timing import compare, rate

# dense bf16 peak FLOP/s by device name fragment (torchtitan's get_peak_flops constants)
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "B200": 2.25e15}
ALL_LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _staged(model, trainable: list[str]):
    from mmoe.train.config import StageConfig
    from mmoe.train.stages import apply_stage

    apply_stage(model, StageConfig(trainable=trainable))
    return model


def _peft(model, rank: int):
    from peft import LoraConfig, inject_adapter_in_model

    _staged(model, ["projector"])
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=ALL_LINEARS), model.llm)
    return model.to(next(model.llm.parameters()).device)


def _peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_FLOPS.items() if k in name), None)


def run(settings: BenchSettings) -> dict:
    p = settings.pick(models.SIZES)
    torch.manual_seed(0)
    built = {
        "mole": _staged(models.build("mole", p, settings, models.mole_overrides(p)), ["projector", "experts", "routers"]),
        "peft_lora": _peft(models.build("tiny", p, settings), p["rank"]),
        "full_ft": _staged(models.build("tiny", p, settings), ["projector", "llm"]),
    }
    batch = models.training_batch(built["mole"], p, settings)
    tokens = int(batch["attention_mask"].sum()) + batch["pixel_values"].shape[0] * (built["mole"].tokens_per_image - 1)
    optimizers = {n: torch.optim.AdamW([q for q in m.parameters() if q.requires_grad], lr=1e-4) for n, m in built.items()}

    def step(name: str):
        model, optimizer = built[name], optimizers[name]

        def call() -> None:
            optimizer.zero_grad(set_to_none=True)
            model(**batch).loss.backward()
            optimizer.step()

        return call

    for model in built.values():
        model.train()
    result = compare({n: step(n) for n in built}, {"mole/peft_lora": ("mole", "peft_lora"), "mole/full_ft": ("mole", "full_ft"),
                                                   "peft_lora/full_ft": ("peft_lora", "full_ft")}, settings)
    peak = _peak_flops(settings.device)
    extra = {}
    for name, model in built.items():
        model.zero_grad(set_to_none=True)
        n_all = sum(q.numel() for q in model.parameters())
        n_train = sum(q.numel() for q in model.parameters() if q.requires_grad)
        speed = rate(tokens, result["variants"][name])
        extra[name] = {
            "tokens_per_s": speed,
            "peak_memory": step_peak(model, lambda model=model: model(**batch).loss, settings.device),
            "parameters": n_all, "trainable": n_train,
            "mfu": None if peak is None else speed["median"] * (4 * n_all + 2 * n_train) / peak,
        }
    mem = {n: extra[n]["peak_memory"]["bytes"] for n in extra}
    result["ratios"]["memory mole/peft_lora"] = {"variant": "mole", "baseline": "peft_lora", "median": mem["mole"] / mem["peft_lora"],
                                                 "p25": mem["mole"] / mem["peft_lora"], "p75": mem["mole"] / mem["peft_lora"]}
    goal = {"tokens_per_s": "peft_lora/mole time ratio >= 1.3 (mole/peft_lora <= 0.77)", "memory": "memory mole/peft_lora <= 1.0"}
    return {"params": {**p, "tokens_per_step": tokens}, "goal": goal, **result, "models": extra}
