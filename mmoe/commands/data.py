"""``mmoe data show|stats PREPARED``: a prepared record as the model sees it; a prepared dataset's statistics."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="look inside a prepared dataset (made by mmoe prep)")
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="one record rendered with its chat template, images and supervised spans marked")
    show.add_argument("prepared", help="a prepared dataset directory")
    show.add_argument("--index", type=int, default=0, help="record number (0-based)")
    show.add_argument("--model", help="render as this model recipe or saved model does (default: the prep's own tokenizer)")
    show.set_defaults(run=run_show)
    stats = sub.add_parser("stats", help="languages, sources, lengths and rejections, from the manifest")
    stats.add_argument("prepared", help="a prepared dataset directory")
    stats.set_defaults(run=run_stats)


def run_show(args: argparse.Namespace) -> int:
    from mmoe.data.from_model import model_text_spec, text_processor
    from mmoe.data.prepared import load_prepared
    from mmoe.data.preview import manifest_spec, render_record
    from mmoe.errors import UsageError

    prepared = load_prepared(args.prepared)
    spec = model_text_spec(args.model)[0] if args.model else manifest_spec(prepared.manifest)
    try:
        print(render_record(prepared, args.index, text_processor(spec), spec.name))
    except IndexError as exc:
        raise UsageError(str(exc)) from None
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from mmoe.data.prepared import read_manifest
    from mmoe.data.preview import format_stats

    print(format_stats(read_manifest(args.prepared)))
    return 0
