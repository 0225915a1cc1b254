#!/usr/bin/env bash
# Two CPU ranks (gloo) on the tiny MoLE recipe: the same launcher and code path as a GPU cluster.
set -euo pipefail

OUT=runs/cpu-smoke
mmoe prep --source synthetic --n 200 --out "$OUT/data"
DS_ACCELERATOR=cpu deepspeed --num_gpus 2 --module mmoe.train configs/mole.yaml \
    "data.train=[$OUT/data]" data.num_workers=0 "train.output_dir=$OUT/run" train.max_steps=20 \
    train.micro_batch_size=4 "train.stage.trainable=[experts,routers]"
