#!/usr/bin/env bash
# MoMa: modality-aware expert groups (4 text + 4 image, upcycled), then the auxiliary-router phase
# that makes routing causal for generation.
set -euo pipefail

BASE=checkpoints/llava15-stage1/model    # a LLaVA-1.5 stage-1 model (configs/train/llava15_stage1.yaml)
DATA=prepared/llava_mole
OUT=checkpoints/moma-4t4i
NUM_GPUS=8

deepspeed --num_gpus "$NUM_GPUS" --module mmoe.train configs/train/moma_4t4i.yaml \
    "data.train=[$DATA]" "train.init_from=$BASE" "train.output_dir=$OUT"

deepspeed --num_gpus "$NUM_GPUS" --module mmoe.train configs/train/moma_aux_routers.yaml \
    "data.train=[$DATA]" "train.init_from=$OUT/model" "train.output_dir=$OUT-aux"
