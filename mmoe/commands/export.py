"""``mmoe export MODEL --out DIR``: an HF LLaVA folder (no experts) or a self-contained mmoe folder with a model card."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a trained model: HF LLaVA folder, or mmoe folder + model card")
    p.add_argument("model", help="a saved mmoe model directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--format", choices=["auto", "hf-llava", "mmoe"], default="auto",
                   help="auto: HF LLaVA when the model has no routed experts (dense LoRA is merged), else mmoe")
    p.add_argument("--eval", metavar="DIR", help="an `mmoe eval run` output whose summary goes into the model card")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mmoe.interop.export import export_model
    from mmoe.model import load_model

    fmt, out = export_model(load_model(args.model), args.out, args.format, args.eval)
    print(f"wrote {out} ({fmt})")
    return 0
