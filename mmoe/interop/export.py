"""``mmoe export``: a trained model out to where others can use it.

Without routed experts: a Hugging Face LLaVA folder (dense LoRA merged). With experts: a
self-contained mmoe folder (full weights, every config, tokenizer, preprocessing) and a model card,
loadable with ``mmoe.load`` from the folder or from a hub id once pushed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from mmoe.interop.model_card import model_card

Format = Literal["auto", "hf-llava", "mmoe"]


def hf_llava_blockers(cfg) -> list[str]:
    """Why a recipe cannot be an HF LLaVA model (from its config; dense LoRA is merged, so it is no blocker)."""
    model = cfg.model
    problems = []
    if model.projector.moe is not None:
        problems.append("it has a Parrot MoE projector")
    if model.moe is not None and (model.moe.router.type != "none" or model.moe.groups is not None):
        problems.append(f"it has routed experts in the LLM (router {model.moe.router.type})")
    if model.projector.type != "mlp2x_gelu":
        problems.append(f"its projector is {model.projector.type}, not mlp2x_gelu")
    if model.vision.backend != "hf":
        problems.append(f"its vision backend is {model.vision.backend}")
    return problems


def _languages(cfg) -> list[str]:
    found: set[str] = set()
    for path in cfg.data.train if cfg.data is not None else []:
        manifest = Path(path) / "manifest.json"
        if manifest.is_file():
            found |= set(json.loads(manifest.read_text(encoding="utf-8"))["languages"])
    return sorted(found - {"und"})


def export_model(model, out: str | Path, fmt: Format = "auto", eval_dir: str | Path | None = None) -> tuple[str, Path]:
    """Write ``model`` to ``out`` as ``fmt`` (``auto``: HF LLaVA when possible); returns (format written, path)."""
    from mmoe.interop.hf_llava import InteropError, export_hf_llava
    from mmoe.model.checkpoint import save_model

    blockers = hf_llava_blockers(model.config)
    if fmt == "hf-llava" and blockers:
        raise InteropError("cannot export to HF LLaVA: " + "; ".join(blockers) + " (use --format mmoe)")
    out = Path(out)
    if fmt == "hf-llava" or (fmt == "auto" and not blockers):
        return "hf-llava", export_hf_llava(model, out)
    card = model_card(model, Path(eval_dir) if eval_dir else None, _languages(model.config))
    save_model(model, out, weights="full")
    (out / "README.md").write_text(card, encoding="utf-8")
    return "mmoe", out
