"""Training memory per GPU under DeepSpeed ZeRO-2 / ZeRO-3: model states only (weights, gradients, AdamW states).

The accounting of the ZeRO paper (Rajbhandari et al., 2020): with bf16/fp16 mixed precision a
parameter costs 2 bytes of weights, a trainable one another 2 bytes of gradient and 12 bytes of
AdamW state (fp32 master copy, momentum, variance); in fp32, 4 + 4 + 8. ZeRO-2 partitions gradients
and optimizer states over the GPUs, ZeRO-3 the weights too. Activations, buffers and the
framework's own workspace come on top and are not estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

# precision -> bytes per parameter for (weights, gradients, optimizer states)
BYTES = {"mixed": (2, 2, 12), "fp32": (4, 4, 8)}


@dataclass(frozen=True)
class MemoryEstimate:
    gpus: int
    zero2: float
    zero3: float


def estimate(total: int, trainable: int, gpus: int, precision: str) -> MemoryEstimate:
    """Bytes of model states per GPU for ``total`` parameters of which ``trainable`` train."""
    weights, grads, states = BYTES["fp32" if precision == "fp32" else "mixed"]
    sharded = (grads + states) * trainable / gpus
    return MemoryEstimate(gpus, weights * total + sharded, weights * total / gpus + sharded)


def _size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def format_memory(total: int, trainable: int, gpus: list[int], precision: str, stage: str | None) -> list[str]:
    """A table of per-GPU model-state memory for each GPU count."""
    mode = "fp32" if precision == "fp32" else "bf16/fp16 mixed precision"
    trains = f"stage {stage!r}: " if stage else ""
    lines = [f"training memory per GPU ({trains}{trainable:,} trainable of {total:,} parameters; {mode}; "
             "weights + gradients + AdamW states, activations not included):",
             f"  {'GPUs':>5}{'ZeRO-2':>13}{'ZeRO-3':>13}"]
    for n in gpus:
        e = estimate(total, trainable, n, precision)
        lines.append(f"  {n:>5}{_size(e.zero2):>13}{_size(e.zero3):>13}")
    return lines
