"""``mmoe bench [CASE ...] [--list] [--device cpu|cuda] [--dtype ...] [--size ...] [--clock wall|cpu] [--json OUT]``."""

from __future__ import annotations

import argparse

DTYPES = ("float32", "bfloat16", "float16")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="time expert layers, training steps, data loading and generation as in-process ratios")
    p.add_argument("cases", nargs="*", help="cases to run (default: all; see --list)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", choices=DTYPES, default=None, help="default: float32 on cpu, bfloat16 on cuda")
    p.add_argument("--size", choices=("tiny", "cpu", "full"), default=None,
                   help="shapes: tiny (smoke test), cpu (minutes on 2 cores; the default on cpu), full (the issue's GPU shapes; default on cuda)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7, help="interleaved timed rounds per case")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: elapsed time; cpu: this process's CPU time (cpu device only), steadier when other jobs share the cores")
    p.add_argument("--json", dest="json_out", default=None, help="write the full report as JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    import torch

    from mmoe.bench.runner import CASES, run_cases, table
    from mmoe.bench.settings import BenchSettings
    from mmoe.errors import MMoEError

    if args.list:
        for name, (_, about) in CASES.items():
            print(f"{name:<18} {about}")
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        raise MMoEError("--device cuda: no CUDA device is available to this process")
    if args.clock == "cpu" and args.device != "cpu":
        raise MMoEError("--clock cpu counts this process's CPU time and does not see GPU work: use --clock wall with --device cuda")
    if args.warmup < 0 or args.repeats < 1:
        raise MMoEError(f"--warmup must be >= 0 and --repeats >= 1 (got {args.warmup}, {args.repeats})")
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        raise MMoEError(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    cuda = args.device == "cuda"
    settings = BenchSettings(
        device=torch.device(args.device),
        dtype=getattr(torch, args.dtype or ("bfloat16" if cuda else "float32")),
        size=args.size or ("full" if cuda else "cpu"),
        warmup=args.warmup,
        repeats=args.repeats,
        clock=args.clock,
    )
    def progress(name: str, seconds: float) -> None:
        print(f"mmoe bench: {name} done in {seconds:.1f} s", file=sys.stderr, flush=True)

    report = run_cases(args.cases or list(CASES), settings, progress)
    print(table(report))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0
