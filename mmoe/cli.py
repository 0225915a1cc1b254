"""The ``mmoe`` command: one subcommand per module in ``mmoe.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module with ``register(subparsers)``; each module imports heavy libraries lazily.
COMMANDS = {
    "info": "mmoe.commands.info",
    "generate": "mmoe.commands.generate",
    "chat": "mmoe.commands.chat",
    "prep": "mmoe.commands.prep",
    "data": "mmoe.commands.data",
    "eval": "mmoe.commands.eval",
    "convert": "mmoe.commands.convert",
    "export": "mmoe.commands.export",
    "push": "mmoe.commands.push",
    "train": "mmoe.commands.train",
    "demo": "mmoe.commands.demo",
    "analyze": "mmoe.commands.analyze",
    "plot": "mmoe.commands.plot",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmoe", description="Multilingual multimodal instruction tuning with MoE joints.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mmoe.errors import MMoEError

    try:
        return int(args.run(args) or 0)
    except MMoEError as exc:
        print(f"mmoe {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
