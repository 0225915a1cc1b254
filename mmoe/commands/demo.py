"""``mmoe demo [--out DIR]``: generate data, train the tiny default in two stages, evaluate on synthetic MMMB."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="end to end on CPU: synthetic data, stage 1 + 2 training, MMMB evaluation")
    p.add_argument("--out", default="runs/demo", help="output directory (an earlier demo run there is replaced; any other non-empty directory is refused)")
    p.add_argument("--train-records", type=int, default=20000, help="records in each stage's generated training set")
    p.add_argument("--test-per-language", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stage1-steps", type=int, help="stage-1 optimizer steps (default: the packaged recipe's)")
    p.add_argument("--stage2-steps", type=int, help="stage-2 optimizer steps (default: the packaged recipe's)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mmoe.demo import format_table, run_demo

    report = run_demo(args.out, args.train_records, args.test_per_language, args.seed, args.stage1_steps, args.stage2_steps)
    print(format_table(report))
    return 0
