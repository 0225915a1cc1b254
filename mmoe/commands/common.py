"""Helpers shared by subcommands: get a model from a recipe or a saved directory; generation options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmoe.errors import MMoEError, UsageError


class ModelSourceError(MMoEError):
    """A recipe names a hub id or path that cannot be loaded (offline, missing, not a model)."""


def is_recipe(path: str) -> bool:
    """A YAML recipe (builds random weights), as opposed to a saved model directory or a hub id."""
    return Path(path).suffix in (".yaml", ".yml") or Path(path).is_file()


def model_from_path(path: str, overrides: list[str] | None = None):
    """A YAML recipe builds a fresh model; a directory or a hub id (mmoe folder) loads a saved one."""
    from mmoe.config.load import load_config
    from mmoe.interop.hub import load
    from mmoe.model import build_model

    if is_recipe(path):
        cfg = load_config(path, overrides)
        try:
            return build_model(cfg)
        except OSError as exc:  # transformers / timm / open_clip: a hub id that cannot be fetched (offline) or read
            raise ModelSourceError(f"{path}: cannot load a model it names: {str(exc).splitlines()[0]}") from exc
    if overrides:
        raise UsageError("overrides apply to YAML recipes, not saved models")
    return load(path)


def add_generation_options(p: argparse.ArgumentParser, *, max_new_tokens: int, image_help: str) -> None:
    """The arguments ``mmoe generate`` and ``mmoe chat`` share: the model, images, system prompt, sampling, device."""
    p.add_argument("model", help="a saved model directory or hub id (or a YAML recipe: random weights)")
    p.add_argument("overrides", nargs="*", help="key.path=value config overrides (recipes only)")
    p.add_argument("--image", action="append", default=[], help=image_help)
    p.add_argument("--system", help="system prompt (default: the chat template's own)")
    p.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling: keep the smallest set of tokens with this probability")
    p.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens (0 = no limit)")
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--seed", type=int, help="sampling seed (reproducible answers)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda when available)")


def chat_session(args: argparse.Namespace):
    """Model (moved to ``--device``), processor and sampling from the shared options; warns when weights are random."""
    import torch

    from mmoe.model import MMoEProcessor
    from mmoe.model.chat import ChatSession, Sampling

    if args.seed is not None:
        torch.manual_seed(args.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if is_recipe(args.model):
        print(f"warning: {args.model} is a recipe, not a trained model: the weights it builds are random "
              "(pass a saved model directory, e.g. a training run's output_dir/model)", file=sys.stderr)
    model = model_from_path(args.model, args.overrides).to(device).eval()
    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                        top_k=args.top_k, repetition_penalty=args.repetition_penalty)
    return ChatSession(model=model, processor=MMoEProcessor.from_model(model), sampling=sampling, system=args.system)


def open_images(paths: list[str]) -> list:
    """``--image`` files decoded by ``mmoe.images`` (a missing, directory or non-image path is a named error)."""
    from mmoe.images import EVAL_LIMITS, decode_file

    return [decode_file(path, None, EVAL_LIMITS) for path in paths]
