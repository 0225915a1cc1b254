"""``mmoe train CONFIG [key=value ...]``: train on a DeepSpeed engine (one process, or under ``deepspeed``)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a recipe (DeepSpeed; CPU ranks, one or many GPUs, many nodes)")
    p.add_argument("config", help="YAML recipe")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. train.max_steps=100")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mmoe.config import load_config
    from mmoe.train.loop import train

    result = train(load_config(args.config, args.overrides))
    print(f"trained to step {result.step}, loss {result.loss:.4f}; model: {result.model_dir}")
    return 0
