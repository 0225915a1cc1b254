"""``mmoe eval run|score|check``: evaluate a model on MMBench/MMMB files, score predictions, check files."""

from __future__ import annotations

import argparse
import json

from mmoe.eval.choices import DTYPE_CHOICES, MISSING_POLICIES, MODE_CHOICES, STYLES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate on MMBench / MMMB (VLMEvalKit TSV layout)")
    sub = p.add_subparsers(dest="eval_command", required=True, metavar="ACTION")

    run_p = sub.add_parser("run", help="generate answers with a model, then score them")
    run_p.add_argument("--model", required=True, help="a saved mmoe model directory")
    run_p.add_argument("--benchmark", nargs="+", default=[], metavar="FILE", help="benchmark TSV file(s)")
    run_p.add_argument("--recipe", help="an eval/*.yaml recipe naming the benchmarks and settings")
    run_p.add_argument("--data-root", help="directory of the recipe's files (default: the recipe's data_root)")
    run_p.add_argument("--out", required=True, help="output directory (reruns resume from its caches)")
    run_p.add_argument("--batch-size", type=int, help="rows per generation batch (default: the recipe's, else 8)")
    run_p.add_argument("--device", help="torch device (default: cuda when present, the launcher's LOCAL_RANK; else cpu)")
    run_p.add_argument("--dtype", choices=list(DTYPE_CHOICES), default="auto",
                       help="auto: bfloat16 on a GPU that has it, float32 otherwise")
    run_p.add_argument("--max-new-tokens", type=int)
    run_p.add_argument("--style", choices=list(STYLES),
                       help="vlmevalkit: VLMEvalKit's default prompt (English instruction in every language)")
    run_p.add_argument("--likelihood", action="store_true", default=None, help="also score options by log-likelihood")
    run_p.add_argument("--likelihood-target", choices=["letter", "text"], default="letter")
    run_p.add_argument("--limit", type=int, help="only the first N questions of each file (smoke runs)")
    run_p.add_argument("--fresh", action="store_true", help="ignore and overwrite existing caches")
    run_p.add_argument("--quiet", action="store_true", help="no progress bars")
    _common(run_p)
    run_p.set_defaults(run=run)

    score_p = sub.add_parser("score", help="score a predictions file (ours, VLMEvalKit's, any tool's)")
    score_p.add_argument("--predictions", required=True, metavar="FILE", help=".tsv/.csv/.xlsx/.jsonl with index, prediction")
    score_p.add_argument("--benchmark", nargs="+", default=[], metavar="FILE",
                         help="the benchmark file (default: columns of the predictions file); one per SUB_DATASET "
                              "for VLMEvalKit's MMMB / MTL_MMBench_DEV collection files")
    score_p.add_argument("--out", required=True, help="output directory for summary.json and reports")
    _common(score_p)
    score_p.set_defaults(run=score)

    check_p = sub.add_parser("check", help="validate benchmark files and print what they hold")
    check_p.add_argument("files", nargs="+", metavar="FILE")
    check_p.add_argument("--language", help="language code when the file name does not say (cn = zh)")
    check_p.add_argument("--split", help="split of a Hugging Face dataset folder")
    check_p.set_defaults(run=check)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=list(MODE_CHOICES), default=None,
                   help="auto: what eval run recorded, else circular for MMBench/CCBench names or files holding rotations, "
                        "vanilla otherwise (MMMB)")
    p.add_argument("--missing", choices=list(MISSING_POLICIES), default="strict",
                   help="rows without a prediction: strict = wrong (default); vlmevalkit = dropped as VLMEvalKit does "
                        "(questions without a pass-0 prediction dropped, groups judged on the rows present)")
    p.add_argument("--language", help="language code when the file name does not say (cn = zh)")
    p.add_argument("--split", help="split of a Hugging Face dataset folder (default dev, then validation)")
    p.add_argument("--judge-url", help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1); off by default")
    p.add_argument("--judge-model", default="gpt-4o-mini", help="judge model name")
    p.add_argument("--judge-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")


def _judge(args: argparse.Namespace):
    if not args.judge_url:
        return None
    from mmoe.eval.judge import OpenAIJudge

    return OpenAIJudge.from_env(args.judge_url, args.judge_model, args.judge_key_env)


def run(args: argparse.Namespace) -> int:
    from mmoe.errors import UsageError
    from mmoe.eval.recipe import EvalRecipe, load_recipe
    from mmoe.eval.run import evaluate

    if not args.recipe and not args.benchmark:
        raise UsageError("give --benchmark FILE... or --recipe eval/NAME.yaml")
    recipe = load_recipe(args.recipe) if args.recipe else EvalRecipe(name="command line", benchmarks=[])
    recipe.check_present(args.data_root)
    files = [*recipe.paths(args.data_root), *args.benchmark]

    def pick(value, default):
        return default if value is None else value

    summaries = evaluate(
        args.model,
        files,
        args.out,
        batch_size=pick(args.batch_size, recipe.batch_size),
        max_new_tokens=pick(args.max_new_tokens, recipe.max_new_tokens),
        style=pick(args.style, recipe.style),
        mode=pick(args.mode, recipe.mode),
        language=args.language,
        split=args.split,
        likelihood=pick(args.likelihood, recipe.likelihood),
        likelihood_target=args.likelihood_target,
        judge=_judge(args),
        missing=args.missing,
        limit=args.limit,
        fresh=args.fresh,
        progress=not args.quiet,
        device=args.device,
        dtype=args.dtype,
    )
    for name, summary in summaries.items():
        print(_line(name, summary))
    if summaries:
        print(f"reports in {args.out}")
    return 0


def score(args: argparse.Namespace) -> int:
    from mmoe.eval.score_file import score_predictions

    summaries = score_predictions(args.predictions, args.out, args.benchmark, args.mode or "auto", args.language,
                                  _judge(args), args.split, args.missing)
    for name, summary in summaries.items():
        print(_line(name, summary))
        print(json.dumps({k: summary[k] for k in ("by_category", "by_l2_category")}, indent=1, ensure_ascii=False))
    return 0


def check(args: argparse.Namespace) -> int:
    from mmoe.eval.check import describe

    for path in args.files:
        print(describe(path, args.language, args.split))
    return 0


def _line(name: str, summary: dict) -> str:
    """The printed result: accuracy, then how it was obtained (mode and why, rows, prompt style, rule set)."""
    mode = f"{summary['mode']} ({summary['mode_reason']})"
    if "overall" not in summary:
        return f"{name}: {summary['n_rows']} predictions (no answers to score), {mode} -> {summary['predictions']}"
    text = (f"{name} [{summary['language']}]: {100 * summary['overall']:.2f}% of {summary['n_questions']} questions\n"
            f"  mode {mode}\n"
            f"  rows: {summary['n_rows_read']} read, {summary['n_rows']} scored, {summary['n_predicted']} predicted, "
            f"{summary['n_missing']} missing ({summary['missing_policy']}: {_missing_effect(summary)}), "
            f"{summary['n_unmatched']} unmatched replies\n"
            f"  prompt style {summary['style'] or 'not recorded'}; extraction rules {summary['extraction']['rule_set']}")
    if summary["missing_indices"]:
        text += f"\n  missing indices: {', '.join(map(str, summary['missing_indices']))}"
        if summary["n_missing"] > len(summary["missing_indices"]):
            text += f" and {summary['n_missing'] - len(summary['missing_indices'])} more"
    if "likelihood" in summary:
        text += f"\n  likelihood {100 * summary['likelihood']['overall']:.2f}%"
    return text


def _missing_effect(summary: dict) -> str:
    if summary["missing_policy"] == "strict":
        return "counted wrong"
    return f"{summary['n_questions_dropped']} questions dropped"
