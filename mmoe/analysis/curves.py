"""Training curves from a run's ``metrics.jsonl`` (what ``mmoe plot RUN_DIR`` draws).

``loss.png`` (loss, LM loss and validation loss by step), ``lr.png`` (each optimizer group's lr),
``aux.png`` (each aux loss), ``load[_<group>].png`` (share of routed tokens per expert over training,
one panel per routed module). ``write_comparison``: several runs' loss curves in one figure (a study's
arms, mean over seeds with the seeds' range shaded).
"""

from __future__ import annotations

import json
from pathlib import Path

from mmoe.analysis.report import TOKENS, _figure, group_of, shares
from mmoe.errors import MMoEError


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise MMoEError(f"{path} not found: `mmoe plot` reads the metrics.jsonl a training run writes into train.output_dir")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise MMoEError(f"{path} line {number}: not JSON ({exc.msg})") from None
    if not records:
        raise MMoEError(f"{path} holds no logged step")
    return records


def _lines(series: dict[str, tuple[list[int], list[float]]], *, ylabel: str, title: str, log: bool = False):
    fig, ax = _figure(6.5, 3.8)
    for name, (steps, values) in series.items():
        ax.plot(steps, values, label=name, marker="." if len(steps) < 30 else None)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _series(records: list[dict], pick) -> dict[str, tuple[list[int], list[float]]]:
    out: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for name, value in pick(record).items():
            if isinstance(value, (int, float)):
                steps, values = out.setdefault(name, ([], []))
                steps.append(record["step"])
                values.append(float(value))
    return out


def curve_figures(records: list[dict]) -> dict[str, object]:
    """File name -> matplotlib Figure."""
    out = {}
    losses = _series(records, lambda r: {"loss": r.get("loss"), "lm_loss": r.get("lm_loss"), "validation loss": (r.get("eval") or {}).get("loss")})
    out["loss.png"] = _lines(losses, ylabel="loss", title="training loss")
    lrs = _series(records, lambda r: {g: v for g, v in (r.get("lr") or {}).items() if not g.endswith(".no_decay")})
    if lrs:
        out["lr.png"] = _lines(lrs, ylabel="learning rate", title="learning rate per group")
    aux = _series(records, lambda r: {k.removeprefix("aux/"): v for k, v in r.items() if k.startswith("aux/")})
    if aux:
        out["aux.png"] = _lines(aux, ylabel="weighted aux loss", title="auxiliary losses")
    modules = sorted({m for r in records for m in r.get("router", {})})
    for group in sorted({group_of(k) for r in records for s in r.get("router", {}).values() for k in s} - {None}):
        key = f"{group}/{TOKENS}" if group else TOKENS
        fig, _ = _figure(6.5, 2.2 + 1.6 * len(modules))
        fig.clear()
        for row, module in enumerate(modules, 1):
            ax = fig.add_subplot(len(modules), 1, row)
            steps = [r["step"] for r in records if key in r.get("router", {}).get(module, {})]
            loads = [shares(r["router"][module][key]) for r in records if key in r.get("router", {}).get(module, {})]
            for expert in range(len(loads[0]) if loads else 0):
                ax.plot(steps, [load[expert] for load in loads], label=f"expert {expert}")
            ax.set_ylabel("token share")
            ax.set_title(module, fontsize=8)
            ax.set_xlabel("step")
        if modules:
            fig.axes[0].legend(fontsize=6, ncol=4)
        fig.suptitle(f"per-expert load{f' ({group} group)' if group else ''}")
        fig.tight_layout()
        out[f"load_{group}.png" if group else "load.png"] = fig
    return out


def write_curves(run_dir: str | Path, out: str | Path | None = None) -> list[Path]:
    out = Path(out) if out is not None else Path(run_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in curve_figures(read_metrics(run_dir)).items():
        fig.savefig(out / name, dpi=110)
        written.append(out / name)
    return written


def _mean_curve(runs: list[list[dict]], pick) -> tuple[list[int], list[float], list[float], list[float]]:
    """Steps every run logged ``pick(record)`` at; the mean, min and max over runs at each."""
    per_run = [{r["step"]: float(pick(r)) for r in records if isinstance(pick(r), (int, float))} for records in runs]
    steps = sorted(set.intersection(*(set(values) for values in per_run))) if per_run else []
    columns = [[values[step] for values in per_run] for step in steps]
    return steps, [sum(c) / len(c) for c in columns], [min(c) for c in columns], [max(c) for c in columns]


def comparison_figure(arms: dict[str, list[list[dict]]], *, title: str):
    """Training loss (left) and, where logged, validation loss (right) by step: one line per arm, the
    mean over its runs (``arms``: name -> each run's metrics records), the runs' min..max shaded."""
    picks = {"training loss": lambda r: r.get("loss"), "held-out (validation) loss": lambda r: (r.get("eval") or {}).get("loss")}
    panels = {name: {arm: _mean_curve(runs, pick) for arm, runs in arms.items()} for name, pick in picks.items()}
    panels = {name: curves for name, curves in panels.items() if any(c[0] for c in curves.values())}
    fig, _ = _figure(4.2 * len(panels), 3.6)
    fig.clear()
    for column, (name, curves) in enumerate(panels.items(), 1):
        ax = fig.add_subplot(1, len(panels), column)
        for arm, (steps, mean, low, high) in curves.items():
            (line,) = ax.plot(steps, mean, label=arm, marker="." if len(steps) < 30 else None)
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def write_comparison(arms: dict[str, list[list[dict]]], path: str | Path, *, title: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    comparison_figure(arms, title=title).savefig(path, dpi=90)
    return path
