"""Run one study of ``experiments/`` and write its table.

    python experiments/run.py experiments/mole_vs_lora.yaml --size small --seeds 0 1 2 --out runs/exp/mole_vs_lora

A study file names its arms (training recipes), its data and its sizes (``small``: CPU minutes;
``gpu``: one GPU). Writes ``OUT/results.md`` and ``OUT/results.json`` (mean and spread over seeds).
By default the CPU kernels are pinned (``mmoe.experiments.kernels``: one thread, no ISA-specific kernels), so a
table repeats on another machine; ``--cpu-kernels native`` runs the processor's own, faster and machine-specific.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmoe.experiments import load_study, run_study
from mmoe.experiments.config import SIZES
from mmoe.experiments.kernels import pin_portable_kernels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", help="a study file, e.g. experiments/parrot_vs_mlp.yaml")
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", required=True)
    parser.add_argument("--cpu-kernels", choices=["portable", "native"], default="portable")
    args = parser.parse_args()
    if args.cpu_kernels == "portable":
        pin_portable_kernels()
    results = run_study(load_study(args.study), size=args.size, seeds=args.seeds, out=args.out)
    print(Path(args.out, "results.md").read_text())
    print(f"wrote {args.out}/results.json ({results['study']}, seeds {results['seeds']})")


if __name__ == "__main__":
    main()
