"""``mmoe info CONFIG|DIR``: the assembled model, part by part, and its training memory under ZeRO-2/3.

A recipe is built on the meta device from configuration files only (hub ids from the local cache),
so full-size models are described in seconds without downloading weights.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="print parameter counts, visual tokens, expert costs and training memory of a model")
    p.add_argument("model", help="a YAML recipe or a saved model directory")
    p.add_argument("overrides", nargs="*", help="key.path=value config overrides")
    p.add_argument("--gpus", default="1,8", help="GPU counts of the memory table (comma-separated)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mmoe.model.info import count_parameters, describe
    from mmoe.errors import UsageError
    from mmoe.model.memory import format_memory

    try:
        gpus = [int(n) for n in args.gpus.split(",")]
    except ValueError:
        raise UsageError(f"--gpus takes comma-separated integers, got {args.gpus!r}") from None
    if Path(args.model).is_dir():
        from mmoe.commands.common import model_from_path

        model, notes = model_from_path(args.model, args.overrides), []
    else:
        from mmoe.config.load import load_config
        from mmoe.model.meta import build_on_meta, config_only
        from mmoe.train.stages import apply_stage

        cfg, notes = config_only(load_config(args.model, args.overrides))
        model = build_on_meta(cfg)
        if cfg.train is not None:
            apply_stage(model, cfg.train.stage)
    print(describe(model))
    precision = model.config.train.precision if model.config.train is not None else "auto"
    total, trainable = count_parameters(model)
    stage = model.config.train.stage.name if model.config.train is not None else None
    print("\n" + "\n".join(format_memory(total, trainable, gpus, precision, stage)))
    for note in notes:
        print(f"note: {note}")
    return 0
