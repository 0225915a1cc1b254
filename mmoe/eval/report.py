"""Write scores: ``summary.json``, a VLMEvalKit-style ``_acc.csv``, a Markdown table and a bar chart."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pandas as pd

from mmoe.eval.score import Score

# VLMEvalKit's short names for MMBench's L2 abilities.
L2_ABBREVIATIONS = {
    "coarse_perception": "CP",
    "finegrained_perception (instance-level)": "FP-S",
    "finegrained_perception (cross-instance)": "FP-C",
    "logic_reasoning": "LR",
    "relation_reasoning": "RR",
    "attribute_reasoning": "AR",
}


def acc_table(score: Score) -> pd.DataFrame:
    """One row per ``split``: ``split``, ``Overall``, the sorted L2 abilities (abbreviated), then the
    sorted leaf categories, each the accuracy of that split's questions (VLMEvalKit's ``report_acc``)."""
    by_split: dict[str, list] = defaultdict(list)
    for q in score.questions:
        by_split[q.main.split or "none"].append(q)
    l2_names = sorted({q.main.l2_category for q in score.questions if q.main.l2_category})
    categories = sorted({q.main.category for q in score.questions if q.main.category})
    records = []
    for split, questions in sorted(by_split.items()):
        record: dict[str, object] = {"split": split, "Overall": _mean([q.hit for q in questions])}
        for l2 in l2_names:
            record[L2_ABBREVIATIONS.get(l2, l2)] = _mean([q.hit for q in questions if q.main.l2_category == l2])
        for cat in categories:
            record[cat] = _mean([q.hit for q in questions if q.main.category == cat])
        records.append(record)
    return pd.DataFrame(records)


def _mean(values: list[bool]) -> float:
    return sum(values) / len(values) if values else float("nan")


def markdown_table(summaries: list[dict]) -> str:
    """Rows: Overall, L2 abilities, categories; columns: one per benchmark, headed by its language."""
    heads = [_column_name(s, summaries) for s in summaries]
    lines = ["| | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]

    def add(label: str, values: list[float | None]) -> None:
        cells = ["" if v is None else f"{100 * v:.2f}" for v in values]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    add("**Overall**", [s["overall"] for s in summaries])
    if any("likelihood" in s for s in summaries):
        add("Overall (likelihood)", [s.get("likelihood", {}).get("overall") for s in summaries])
    for key in ("by_l2_category", "by_category"):
        for name in sorted({n for s in summaries for n in s[key]}):
            label = L2_ABBREVIATIONS.get(name, name) if key == "by_l2_category" else name
            add(label, [s[key].get(name) for s in summaries])
    lines.append("| questions | " + " | ".join(str(s["n_questions"]) for s in summaries) + " |")
    lines.append("| unmatched rows | " + " | ".join(str(s["n_unmatched"]) for s in summaries) + " |")
    lines.append("| missing rows | " + " | ".join(str(s["n_missing"]) for s in summaries) + " |")
    modes = ", ".join(sorted({s["mode"] for s in summaries}))
    return f"Accuracy (%), {modes} evaluation\n\n" + "\n".join(lines) + "\n"


def _column_name(summary: dict, summaries: list[dict]) -> str:
    languages = [s["language"] for s in summaries]
    unique = languages.count(summary["language"]) == 1
    return summary["language"] if unique else f"{summary['benchmark']} ({summary['language']})"


def chart_figure(summaries: list[dict]):
    """Per-category accuracy bars, one colour per benchmark, each labelled with its value so a 0 % bar
    is still visible (Agg backend; no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    categories = ["Overall", *sorted({c for s in summaries for c in s["by_category"]})]
    width = 0.8 / max(len(summaries), 1)
    fig = Figure(figsize=(max(6.0, 0.5 * len(categories) * max(len(summaries), 1) ** 0.5 + 2), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, s in enumerate(summaries):
        values = [100 * (s["overall"] if c == "Overall" else s["by_category"].get(c, float("nan"))) for c in categories]
        bars = ax.bar([x + i * width for x in range(len(categories))], values, width, label=_column_name(s, summaries),
                      edgecolor="black", linewidth=0.6)
        ax.bar_label(bars, labels=["" if v != v else f"{v:.0f}" for v in values], fontsize=6, padding=1)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(categories))], categories, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title(", ".join(sorted({s["mode"] for s in summaries})) + " accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def bar_chart(summaries: list[dict], path: Path) -> None:
    chart_figure(summaries).savefig(path, dpi=120)


def write_reports(score: Score, out_dir: Path, extra: dict | None = None) -> dict:
    """Write one benchmark's reports into ``out_dir`` and return its summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {**score.summary(), **(extra or {})}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    acc_table(score).to_csv(out_dir / f"{score.benchmark.name}_acc.csv", index=False)
    (out_dir / "results.md").write_text(markdown_table([summary]))
    bar_chart([summary], out_dir / "accuracy.png")
    return summary


def write_combined(summaries: dict[str, dict], out_dir: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Reports over several benchmarks: a summary per name, a table per language x category, one chart,
    and the ``_acc.csv`` tables stacked with a ``DATASET`` column (as VLMEvalKit's MMMB collection)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summaries, indent=2, ensure_ascii=False))
    scored = [s for s in summaries.values() if "overall" in s]
    if not scored:
        return
    (out_dir / "results.md").write_text(markdown_table(scored))
    bar_chart(scored, out_dir / "accuracy.png")
    stacked = [table.assign(DATASET=name)[["DATASET", *table.columns]] for name, table in tables.items()]
    pd.concat(stacked, ignore_index=True).to_csv(out_dir / "all_acc.csv", index=False)
