"""``mmoe convert``: import an HF LLaVA checkpoint, or export a model without experts back to it."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("convert", help="convert between HF LlavaForConditionalGeneration and mmoe directories")
    direction = p.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from-hf-llava", metavar="SRC", help="HF LLaVA checkpoint directory or hub id to import")
    direction.add_argument("--to-hf-llava", metavar="SRC", help="mmoe model directory (without experts) to export")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mmoe.interop.hf_llava import convert_from_hf_llava, export_hf_llava
    from mmoe.model import load_model

    if args.from_hf_llava:
        out = convert_from_hf_llava(args.from_hf_llava, args.out)
    else:
        out = export_hf_llava(load_model(args.to_hf_llava), args.out)
    print(f"wrote {out}")
    return 0
