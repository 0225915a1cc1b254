"""Generate the synthetic multilingual task end to end: prepared training data plus held-out benchmarks.

    python data_prep/synthetic.py --out data/synthetic --n 6000 --bench 200

writes ``OUT/prepared`` (an ``mmoe prep`` output), ``OUT/raw`` (LLaVA JSON + PNGs) and
``OUT/bench`` (``mmmb_{en,cn,pt,ar,tr,ru}.tsv``, ``mmbench_dev_*.tsv`` with circular copies).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmoe.data.config import load_prep_config
from mmoe.data.prep import prepare
from mmoe.data.synthetic import generate_benchmarks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=6000, help="training records")
    parser.add_argument("--bench", type=int, default=200, help="benchmark questions per language")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    recipe = Path(__file__).with_name("synthetic.yaml")
    cfg = load_prep_config(recipe)
    source = cfg.sources[0].model_copy(update={"n": args.n, "seed": args.seed, "path": str(out / "raw")})
    manifest = prepare(cfg.model_copy(update={"sources": [source]}), out / "prepared")
    paths = generate_benchmarks(out / "bench", args.bench, seed=args.seed)
    print(f"prepared {manifest['kept']} records in {out / 'prepared'}; benchmarks: {', '.join(p.name for p in paths)}")


if __name__ == "__main__":
    main()
