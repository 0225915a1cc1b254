"""The analysis of collected router statistics: ``analysis.json``, ``report.md`` and PNG figures.

Figures (matplotlib, Agg backend): ``usage[_<group>].png`` (share of routed tokens per expert, one
row per routed module), ``languages[_<group>].png`` (per language, each expert's share of the routing
weight summed over the LLM's modules; Parrot's projector has its own: which expert each
language's images get),
``entropy[_<group>].png`` (distribution of normalised router entropy ``H / log E``).
"""

from __future__ import annotations

import json
from pathlib import Path

from mmoe.analysis.collect import ALL, Collector

TOKENS = "tokens_per_expert"
WEIGHT = "routing_weight"


def jsonable(stats: dict) -> dict:
    return {key: (value.tolist() if value.numel() > 1 else float(value)) for key, value in stats.items()}


def group_of(key: str) -> str | None:
    """``text/tokens_per_expert`` -> ``text``; ``tokens_per_expert`` -> ``""``; other keys -> None."""
    head, sep, tail = key.partition(TOKENS)
    return head.rstrip("/") if sep and not tail else None


def shares(counts: list[float]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def summarize(collector: Collector, *, model: str, data: str, kind: str) -> dict:
    """Everything the report and figures show, as plain JSON-ready numbers."""
    categories = {}
    for category, modules in collector.by_category.items():
        categories[category] = {"samples": collector.samples[category], "modules": {m: jsonable(s) for m, s in modules.items()}}
    return {"model": model, "data": data, "kind": kind, "categories": categories}


def usage_rows(summary: dict, group: str, category: str = ALL) -> dict[str, list[float]]:
    """``{module: token share per expert}`` for one group (``""`` outside modality groups)."""
    key = f"{group}/{TOKENS}" if group else TOKENS
    modules = summary["categories"][category]["modules"]
    return {m: shares(_as_list(s[key])) for m, s in modules.items() if key in s}


def language_counts(summary: dict, group: str, modules: list[str], category: str = ALL) -> dict[str, list[float]]:
    """``{language: summed routing weight per expert}`` over ``modules``: the share of its tokens'
    routing each expert gets (for soft routing every expert sees every token; the weights differ)."""
    prefix = f"{group}/{WEIGHT}/" if group else f"{WEIGHT}/"
    totals: dict[str, list[float]] = {}
    for module in modules:
        for key, value in summary["categories"][category]["modules"][module].items():
            if key.startswith(prefix):
                language = key[len(prefix):]
                counts = _as_list(value)
                totals[language] = [a + b for a, b in zip(totals.get(language, [0.0] * len(counts)), counts)]
    return totals


def _as_list(value) -> list[float]:
    return value if isinstance(value, list) else [value]


def groups(summary: dict) -> list[str]:
    found = {group_of(k) for s in summary["categories"][ALL]["modules"].values() for k in s}
    return sorted(g for g in found if g is not None)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def usage_figure(rows: dict[str, list[float]], group: str):
    # at least 5 inches wide: the module labels, the title and the colour bar need it even for one expert
    fig, ax = _figure(max(5.0, 2.5 + 0.5 * max(len(r) for r in rows.values())), 1.6 + 0.35 * len(rows))
    image = ax.imshow([rows[m] for m in rows], aspect="auto", cmap="viridis", vmin=0.0)
    ax.set_yticks(range(len(rows)), list(rows), fontsize=6)
    ax.set_xticks(range(len(next(iter(rows.values())))))
    ax.set_xlabel("expert")
    ax.set_ylabel("routed module")
    ax.set_title(f"share of routed tokens per expert{f' ({group} group)' if group else ''}")
    fig.colorbar(image, ax=ax, label="share of tokens")
    fig.tight_layout()
    return fig


def language_figure(counts: dict[str, list[float]], title: str):
    fig, ax = _figure(7.0, 4.0)
    languages = sorted(counts)
    experts = len(next(iter(counts.values())))
    width = 0.8 / experts
    for e in range(experts):
        ax.bar([i + e * width for i in range(len(languages))], [shares(counts[lang])[e] for lang in languages], width, label=f"expert {e}")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(languages))], languages)
    ax.set_xlabel("language")
    ax.set_ylabel("share of routing weight")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=6, ncol=min(experts, 4))
    fig.tight_layout()
    return fig


def entropy_figure(hist: list[float], group: str):
    fig, ax = _figure(6.0, 3.5)
    bins = len(hist)
    ax.bar([(i + 0.5) / bins for i in range(bins)], hist, 1.0 / bins, edgecolor="black", linewidth=0.4)
    ax.set_xlabel("normalised router entropy H / log E")
    ax.set_ylabel("tokens")
    ax.set_xlim(0, 1)
    ax.set_title(f"router entropy{f' ({group} group)' if group else ''}")
    fig.tight_layout()
    return fig


def figures(summary: dict) -> dict[str, object]:
    """File name -> matplotlib Figure."""
    out = {}
    modules = summary["categories"][ALL]["modules"]
    for group in groups(summary):
        suffix = f"_{group}" if group else ""
        rows = usage_rows(summary, group)
        if not rows:
            continue
        out[f"usage{suffix}.png"] = usage_figure(rows, group)
        llm = [m for m in rows if m != "projector"]
        if llm and (counts := language_counts(summary, group, llm)):
            out[f"languages{suffix}.png"] = language_figure(counts, "LLM experts per language" + (f" ({group} group)" if group else ""))
        if "projector" in rows and (counts := language_counts(summary, group, ["projector"])):
            out["languages_projector.png"] = language_figure(counts, "Parrot: experts each language's images get")
        hist_key = f"{group}/entropy_hist" if group else "entropy_hist"
        hists = [_as_list(s[hist_key]) for s in modules.values() if hist_key in s]
        if hists:
            out[f"entropy{suffix}.png"] = entropy_figure([sum(v) for v in zip(*hists)], group)
    return out


def markdown(summary: dict) -> str:
    lines = [f"# Router analysis of `{summary['model']}`", "", f"Data: `{summary['data']}` ({summary['kind']}).", ""]
    lines += ["| category | samples |", "|---|---|"]
    lines += [f"| {c} | {v['samples']} |" for c, v in sorted(summary["categories"].items())]
    for group in groups(summary):
        title = f"{group} group" if group else "experts"
        lines += ["", f"## Share of routed tokens per expert ({title})", ""]
        rows = usage_rows(summary, group)
        experts = len(next(iter(rows.values())))
        lines += ["| module | " + " | ".join(f"e{e}" for e in range(experts)) + " | entropy |", "|---" * (experts + 2) + "|"]
        entropy_key = f"{group}/router_entropy" if group else "router_entropy"
        modules = summary["categories"][ALL]["modules"]
        for module, share in rows.items():
            entropy = modules[module].get(entropy_key)
            cells = " | ".join(f"{v:.3f}" for v in share)
            lines.append(f"| {module} | {cells} | {entropy:.3f} |" if entropy is not None else f"| {module} | {cells} | - |")
        for name, members in (("LLM", [m for m in rows if m != "projector"]), ("Parrot projector", [m for m in rows if m == "projector"])):
            counts = language_counts(summary, group, members) if members else {}
            if counts:
                lines += ["", f"Share of routing weight per language ({name}, summed over its modules):", ""]
                lines += ["| language | " + " | ".join(f"e{e}" for e in range(experts)) + " |", "|---" * (experts + 1) + "|"]
                lines += [f"| {lang} | " + " | ".join(f"{v:.3f}" for v in shares(counts[lang])) + " |" for lang in sorted(counts)]
    return "\n".join(lines) + "\n"


def write_report(summary: dict, out: str | Path) -> list[Path]:
    """``analysis.json``, ``report.md`` and the figures under ``out``; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "analysis.json", out / "report.md"]
    written[0].write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    written[1].write_text(markdown(summary), encoding="utf-8")
    for name, fig in figures(summary).items():
        fig.savefig(out / name, dpi=110)
        written.append(out / name)
    return written
