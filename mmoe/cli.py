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
    "bench": "mmoe.commands.bench",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmoe", description="Multilingual multimodal instruction tuning with MoE joints.")
    parser.add_argument("--debug", action="store_true", help="on an error, print the full traceback (accepted anywhere on the line)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand. A bad input (``MMoEError``) or an OS failure (disk full, permissions) is printed as
    ``mmoe COMMAND: error: ...`` with exit status 2; ``--debug`` lets it raise with its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    from mmoe.errors import MMoEError

    try:
        return int(args.run(args) or 0)
    except (MMoEError, OSError) as exc:
        if debug:
            raise
        print(f"mmoe {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
