"""``mmoe push DIR REPO_ID``: upload an exported folder to the Hugging Face Hub (``--dry-run FILE``: write the plan)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("push", help="upload an exported model folder to the Hugging Face Hub")
    p.add_argument("folder", help="a folder written by mmoe export")
    p.add_argument("repo_id", help="e.g. your-name/mmoe-mole-7b")
    p.add_argument("--private", action="store_true")
    p.add_argument("--message", default="Upload mmoe model", help="commit message")
    p.add_argument("--dry-run", metavar="FILE", help="write what would be uploaded (paths, sizes, sha256) to FILE; no network")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mmoe.interop.hub import push

    files = push(args.folder, args.repo_id, private=args.private, dry_run=args.dry_run, message=args.message)
    size = sum(f["size"] for f in files)
    verb = f"would upload (plan in {args.dry_run})" if args.dry_run else "uploaded"
    print(f"{verb} {len(files)} files, {size:,} bytes, to {args.repo_id}")
    return 0
