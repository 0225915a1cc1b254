"""``mmoe prep``: turn raw sources into a validated, language-tagged, de-duplicated prepared dataset."""

from __future__ import annotations

import argparse

from mmoe.errors import UsageError

SOURCES = ("llava", "sharegpt", "hf", "captions", "mcq_tsv", "synthetic")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prep",
        help="prepare training data (validate, tag languages, dedupe, balance) into a prepared dataset",
        description="Either one source (--source/--input) or a YAML mixture (--config); key.path=value overrides apply to the prep config.",
    )
    p.add_argument("--config", help="a YAML mixture (see data_prep/*.yaml)")
    p.add_argument("--model", help="a model recipe or saved model directory: lengths use its tokenizer, template and visual tokens")
    p.add_argument("--source", choices=SOURCES, help="the reader for --input")
    p.add_argument("--input", action="append", default=[], help="input file (repeatable); a hub id or directory for --source hf")
    p.add_argument("--image-root", help="directory image paths are relative to (default: each input's directory)")
    p.add_argument("--language", help="declared language of every record (ISO 639-1, e.g. zh)")
    p.add_argument("--langid-languages", metavar="CODES",
                   help="languages language ID chooses among, comma-separated, or 'all' (default: en,zh,pt,ar,tr,ru plus declared ones)")
    p.add_argument("--n", type=int, default=1000, help="records to generate (--source synthetic)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (--source synthetic)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--strict", action="store_true", help="stop at the first bad record")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides of the prep config")
    p.set_defaults(run=run)


def _single_source(args: argparse.Namespace) -> dict:
    if args.source == "synthetic":
        return {"type": "synthetic", "n": args.n, "seed": args.seed, "language": args.language}
    if not args.input:
        raise UsageError(f"--source {args.source} needs --input")
    if args.source == "hf":
        if len(args.input) > 1:
            raise UsageError("--source hf takes one --input (a hub id or a path)")
        return {"type": "hf", "path": args.input[0], "image_root": args.image_root, "language": args.language}
    path = args.input[0] if len(args.input) == 1 else args.input
    return {"type": args.source, "path": path, "image_root": args.image_root, "language": args.language}


def run(args: argparse.Namespace) -> int:
    import json

    from mmoe.config.load import apply_overrides
    from mmoe.data.config import parse_prep_config, read_prep_yaml
    from mmoe.data.prep import prepare

    if bool(args.config) == bool(args.source):
        raise UsageError("give exactly one of --config or --source")
    raw = read_prep_yaml(args.config) if args.config else {"sources": [_single_source(args)]}
    if args.strict:
        raw["strict"] = True
    if args.model:
        raw["model"] = args.model
    if args.langid_languages:
        value = args.langid_languages.strip()
        raw["langid"] = {**(raw.get("langid") or {}), "languages": value if value == "all" else [c.strip() for c in value.split(",") if c.strip()]}
    cfg = parse_prep_config(apply_overrides(raw, args.overrides), source=args.config or "command line")
    manifest = prepare(cfg, args.out, progress=not args.no_progress)
    summary = {k: manifest[k] for k in ("read", "kept", "rejected", "balanced_out", "rejected_by_reason", "languages", "undetermined", "image_notes")}
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    tok = manifest["tokenizer"]
    print(f"lengths measured with tokenizer {tok['name']}, template {tok['chat_template']}, "
          f"{tok['tokens_per_image']} tokens per image; from {tok['from']}")
    print(f"wrote {args.out}/manifest.json and {args.out}/report.json")
    return 0
