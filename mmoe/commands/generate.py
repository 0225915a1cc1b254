"""``mmoe generate MODEL --prompt ... [--image FILE]``: one answer (forward shape + generation), for smoke checks."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from mmoe.commands.common import add_generation_options

    p = subparsers.add_parser("generate", help="answer a prompt (with images) using a recipe or a saved model")
    p.add_argument("--prompt", default="<image>\nWhat is in this picture?",
                   help="user message; <image> marks images (added in front when --image is given without it)")
    p.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    add_generation_options(p, max_new_tokens=32, image_help="image file (repeat for several)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image
    from transformers import TextStreamer

    from mmoe.commands.common import chat_session, open_images

    images = open_images(args.image)
    session = chat_session(args)
    image_token = session.processor.image_token
    if not images and image_token in args.prompt:
        images = [Image.new("RGB", (64, 48), (200, 40, 40))] * args.prompt.count(image_token)
        print("(no --image given: using a blank red test image)")
    probe = session.prompt_batch(args.prompt, images)
    with torch.no_grad():
        out = session.model(**probe)
    print(f"forward: logits {tuple(out.logits.shape)}, {int(probe['input_ids'].shape[1])} prompt tokens")
    streamer = TextStreamer(session.processor.tokenizer, skip_prompt=True, skip_special_tokens=True) if args.stream else None
    if streamer is not None:
        print("answer: ", end="", flush=True)
    answer = session.ask(args.prompt, images, streamer)
    if streamer is None:
        print(f"answer: {answer!r}")
    return 0

