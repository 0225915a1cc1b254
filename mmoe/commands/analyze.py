"""``mmoe analyze --model DIR --data PREPARED|BENCH.tsv --out DIR``: what the experts do on this data."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("analyze", help="router statistics per layer, expert, language, modality and category, with figures")
    p.add_argument("--model", required=True, help="a saved model directory (or a recipe: random weights)")
    p.add_argument("--data", required=True, help="a prepared dataset directory (mmoe prep) or an MCQ benchmark file (TSV layout)")
    p.add_argument("--out", required=True, help="where analysis.json, report.md and the PNG figures go")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="analyse only the first N samples / rows")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from mmoe.analysis.collect import collect_benchmark, collect_prepared
    from mmoe.analysis.report import summarize, write_report
    from mmoe.commands.common import model_from_path
    from mmoe.errors import MMoEError

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model_from_path(args.model, []).to(device).eval()
    data = Path(args.data)
    if data.is_dir():
        if not (data / "manifest.json").is_file():
            raise MMoEError(f"{data} is a directory without manifest.json: --data takes a prepared dataset (mmoe prep) or a benchmark file")
        kind, collector = "prepared", collect_prepared(model, data, batch_size=args.batch_size, limit=args.limit)
    elif data.is_file():
        kind, collector = "benchmark", collect_benchmark(model, data, batch_size=args.batch_size, limit=args.limit)
    else:
        raise MMoEError(f"--data {data}: no such file or directory")
    written = write_report(summarize(collector, model=str(args.model), data=str(data), kind=kind), args.out)
    print(f"wrote {len(written)} files to {args.out}: " + ", ".join(p.name for p in written))
    return 0
