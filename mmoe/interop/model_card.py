"""The model card (README.md) of an exported mmoe folder: method, recipe, data, evaluation, usage.

Facts only from what is on disk: the model's config, the manifests of its training data (when the
prepared directories are still there) and an ``mmoe eval run`` output's ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mmoe.model.info import count_parameters
from mmoe.model.parts import group_sizes


def _method(cfg) -> list[str]:
    model = cfg.model
    lines = []
    if model.projector.moe is not None:
        moe = model.projector.moe
        lines.append(f"- Parrot MoE projector: {moe.num_experts} {moe.expert} experts over the visual tokens, "
                     f"conditioned on the prompt ({'bypassed' if moe.bypass else f'residual {moe.residual}, alpha {moe.alpha}'})")
    if model.moe is not None:
        moe = model.moe
        counts = ", ".join(f"{group} {n}" for group, n in moe.expert_counts().items())
        kind = "MoMa modality-aware groups" if moe.groups is not None else "expert layers"
        lines.append(f"- {kind} in the LLM's MLP blocks ({moe.layers} layers): {moe.experts.type} experts ({counts}), "
                     f"router {moe.router.type}" + (f" top-{moe.router.top_k}" if moe.router.type == "top_k" else ""))
        if moe.attention_lora is not None:
            lines.append(f"- attention LoRA (rank {moe.attention_lora.rank}) on {', '.join(moe.attention_lora.targets)}")
    if not lines:
        lines.append("- no experts (a LLaVA-style model)")
    return lines


def _data(cfg) -> list[str]:
    paths = cfg.data.train if cfg.data is not None else []
    if not paths:
        return ["No training data recorded in the recipe."]
    lines = []
    for path in paths:
        manifest = Path(path) / "manifest.json"
        if not manifest.is_file():
            lines.append(f"- `{path}`: manifest not found at export time")
            continue
        m = json.loads(manifest.read_text(encoding="utf-8"))
        languages = ", ".join(f"{k} {v}" for k, v in sorted(m["languages"].items(), key=lambda kv: -kv[1]))
        sources = ", ".join(f"{name} ({info['kept']})" for name, info in m["sources"].items())
        lines.append(f"- `{path}`: {m['kept']} records kept of {m['read']} read; languages: {languages}; sources: {sources}")
    return lines


def _evaluation(eval_dir: Path | None) -> list[str]:
    if eval_dir is None:
        return ["Not evaluated at export time (pass `--eval DIR`, an `mmoe eval run` output)."]
    summaries = json.loads((Path(eval_dir) / "summary.json").read_text(encoding="utf-8"))
    if "overall" in summaries:
        summaries = {summaries.get("benchmark", "benchmark"): summaries}
    lines = ["| benchmark | language | mode | questions | accuracy |", "|---|---|---|---|---|"]
    for name, s in summaries.items():
        if "overall" in s:
            lines.append(f"| {name} | {s['language']} | {s['mode']} | {s['n_questions']} | {100 * s['overall']:.2f}% |")
    return lines


def model_card(model, eval_dir: Path | None = None, languages: list[str] | None = None) -> str:
    cfg = model.config
    total, _ = count_parameters(model)
    sizes = ", ".join(f"{group} {n:,}" for group, n in group_sizes(model).items())
    front = {"library_name": "mmoe", "tags": ["mmoe", "multimodal", "mixture-of-experts"]}
    if cfg.model.llm.name:
        front["base_model"] = cfg.model.llm.name
    if languages:
        front["language"] = languages
    recipe = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    parts = [
        "---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
        "# mmoe model", "",
        f"A multilingual multimodal model trained with mmoe: {total:,} parameters ({sizes}).", "",
        "## Method", "", *_method(cfg), "",
        "## Training data", "", *_data(cfg), "",
        "## Evaluation", "", *_evaluation(eval_dir), "",
        "## Usage", "",
        "```python", "import mmoe", "model = mmoe.load(\"THIS_FOLDER_OR_HUB_ID\")  # full weights: nothing else is downloaded", "```",
        "", "```bash", "mmoe chat THIS_FOLDER --image photo.jpg", "```", "",
        "## Recipe", "", "```yaml", recipe.rstrip(), "```", "",
    ]
    return "\n".join(parts)
