"""``python -m mmoe.train CONFIG [key=value ...]``, also as ``deepspeed --module mmoe.train ...``."""

from __future__ import annotations

import sys

from mmoe.cli import main

if __name__ == "__main__":
    # The deepspeed launcher appends --local_rank=N; the rank is read from the environment instead.
    args = [a for a in sys.argv[1:] if not a.startswith("--local_rank")]
    sys.exit(main(["train", *args]))
