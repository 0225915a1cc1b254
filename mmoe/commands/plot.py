"""``mmoe plot RUN_DIR``: loss curves, learning rates, aux losses and per-expert load from metrics.jsonl."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plot", help="training curves of a run (metrics.jsonl) as PNG files")
    p.add_argument("run_dir", help="a training output directory (train.output_dir)")
    p.add_argument("--out", default=None, help="where the PNGs go (default: RUN_DIR/plots)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mmoe.analysis.curves import write_curves

    written = write_curves(args.run_dir, args.out)
    print(f"wrote {len(written)} plots: " + ", ".join(str(p) for p in written))
    return 0
