#!/usr/bin/env bash
# LLaVA-MoLE: sparse LoRA experts on the MLP blocks of a frozen LLaVA-1.5-7B.
# Start from an HF LLaVA checkpoint (imported once) or from your own LLaVA-1.5 stage 1
# (configs/train/llava15_stage1.yaml). Prepare the data: mmoe prep --config data_prep/llava_mole.yaml --out "$DATA"
set -euo pipefail

HF_LLAVA=llava-hf/llava-1.5-7b-hf        # hub id or local directory
BASE=checkpoints/llava15-imported
DATA=prepared/llava_mole
OUT=checkpoints/llava-mole-7b
NUM_GPUS=8

[[ -d "$BASE" ]] || mmoe convert --from-hf-llava "$HF_LLAVA" --out "$BASE"

deepspeed --num_gpus "$NUM_GPUS" --module mmoe.train configs/train/mole_llava15_7b.yaml \
    "data.train=[$DATA]" \
    "train.init_from=$BASE" \
    "train.output_dir=$OUT"
