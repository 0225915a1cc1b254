"""``mmoe chat MODEL``: a multi-turn conversation in the terminal, images attached by path, answers streamed."""

from __future__ import annotations

import argparse
import sys

HELP = "commands: /image PATH (attach to your next message), /reset (new conversation), /quit"


def register(subparsers: argparse._SubParsersAction) -> None:
    from mmoe.commands.common import add_generation_options

    p = subparsers.add_parser("chat", help="chat with a saved model (or a recipe): multi-turn, images, streaming")
    p.add_argument("--no-stream", action="store_true", help="print each answer when it is complete")
    add_generation_options(p, max_new_tokens=512, image_help="image file attached to the first message (repeatable)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from transformers import TextStreamer

    from mmoe.commands.common import chat_session, open_images
    from mmoe.errors import MMoEError

    pending = open_images(args.image)
    session = chat_session(args)
    streamer = None if args.no_stream else TextStreamer(session.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    interactive = sys.stdin.isatty()
    if interactive:
        print(HELP)
    while True:
        if interactive:
            print("user> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() == "/quit":
            return 0
        text = line.rstrip("\n")
        if text.startswith("/image "):
            try:
                pending += open_images([text[len("/image "):].strip()])
            except OSError as exc:
                print(f"cannot open image: {exc}", file=sys.stderr)
            continue
        if text.strip() == "/reset":
            session.reset()
            pending = []
            continue
        if not text.strip():
            continue
        print("assistant> ", end="", flush=True)
        try:
            reply = session.ask(text, pending, streamer)
        except MMoEError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            continue
        pending = []
        if streamer is None:
            print(reply)
