"""``mmoe info CONFIG|DIR``: the assembled model, part by part."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="print parameter counts, visual tokens and dtypes of a model")
    p.add_argument("model", help="a YAML recipe or a saved model directory")
    p.add_argument("overrides", nargs="*", help="key.path=value config overrides")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mmoe.commands.common import model_from_path
    from mmoe.model.info import describe

    print(describe(model_from_path(args.model, args.overrides)))
    return 0
