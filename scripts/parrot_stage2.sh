#!/usr/bin/env bash
# Parrot stage 2: multilingual instruction tuning of the MoE projector, projector and LLM (ZeRO-3).
# Prepare the data first: mmoe prep --config data_prep/parrot_stage2.yaml --out "$DATA"
set -euo pipefail

DATA=prepared/parrot_stage2
STAGE1=checkpoints/parrot-qwen2-7b-stage1/model
OUT=checkpoints/parrot-qwen2-7b-stage2
NUM_GPUS=8
HOSTFILE=""

LAUNCH=(deepspeed --num_gpus "$NUM_GPUS")
[[ -n "$HOSTFILE" ]] && LAUNCH=(deepspeed --hostfile "$HOSTFILE")

"${LAUNCH[@]}" --module mmoe.train configs/train/parrot_stage2.yaml \
    "data.train=[$DATA]" \
    "train.init_from=$STAGE1" \
    "train.output_dir=$OUT" \
    train.micro_batch_size=4 \
    train.gradient_accumulation_steps=$((128 / (4 * NUM_GPUS)))

mmoe eval run --model "$OUT/model" --recipe eval/mmmb.yaml --out "$OUT/eval"
