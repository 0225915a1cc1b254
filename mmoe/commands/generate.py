"""``mmoe generate MODEL --prompt ... [--image FILE]``: one forward + generation, for smoke checks and chat."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="answer a prompt (with images) using a recipe or a saved model")
    p.add_argument("model", help="a YAML recipe or a saved model directory")
    p.add_argument("overrides", nargs="*", help="key.path=value config overrides")
    p.add_argument("--prompt", default="<image>\nWhat is in this picture?", help="user message; <image> marks images")
    p.add_argument("--image", action="append", default=[], help="image file (repeat for several)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image

    from mmoe.commands.common import model_from_path
    from mmoe.model import MMoEProcessor
    from mmoe.tokenization import Turn

    model = model_from_path(args.model, args.overrides).eval()
    processor = MMoEProcessor.from_model(model)
    images = [Image.open(path) for path in args.image]
    if not images and "<image>" in args.prompt:
        images = [Image.new("RGB", (64, 48), (200, 40, 40))]
        print("(no --image given: using a blank red test image)")
    batch = processor.prompts([[Turn("user", args.prompt)]], [images])
    with torch.no_grad():
        out = model(**batch)
        sampling = {"do_sample": True, "temperature": args.temperature} if args.temperature > 0 else {"do_sample": False}
        new = model.generate(**batch, max_new_tokens=args.max_new_tokens, **sampling)
    print(f"forward: logits {tuple(out.logits.shape)}, {int(batch['input_ids'].shape[1])} prompt tokens")
    print(f"answer: {processor.decode(new)[0]!r}")
    return 0
