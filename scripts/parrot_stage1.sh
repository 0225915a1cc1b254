#!/usr/bin/env bash
# Parrot stage 1: align the MLP projector (MoE bypassed) on caption pairs. Edit the paths, then run.
# Prepare the data first: mmoe prep --config data_prep/parrot_stage1.yaml --out "$DATA"
set -euo pipefail

DATA=prepared/parrot_stage1            # output of `mmoe prep`
OUT=checkpoints/parrot-qwen2-7b-stage1
NUM_GPUS=8
HOSTFILE=""                            # e.g. hostfile (one "host slots=8" line per node) for several nodes

LAUNCH=(deepspeed --num_gpus "$NUM_GPUS")
[[ -n "$HOSTFILE" ]] && LAUNCH=(deepspeed --hostfile "$HOSTFILE")

"${LAUNCH[@]}" --module mmoe.train configs/train/parrot_stage1.yaml \
    "data.train=[$DATA]" \
    "train.output_dir=$OUT" \
    train.micro_batch_size=8 \
    train.gradient_accumulation_steps=$((256 / (8 * NUM_GPUS)))
