#!/usr/bin/env bash
# The candidate next mel prior: the shipped recipe (all data, seed 0) with the 2-D U-Net over (bins, time)
# that won the design screen (scripts/screen_mel_design.sh; benchmarks/RESULTS.md, "Denoiser design
# screen"), trained on 128-frame crops, one 16,000-step cosine. Its export goes to RUN_DIR/weights, not
# into the package: it replaces the shipped weights only once it beats them on benchmarks/mel_prior.py.
#
#   scripts/train_mel_unet2d.sh DATA_DIR [RUN_DIR] [SEED] [THREADS]   (defaults: -, train_runs/mel2d, 0, 1)
#
# About 1.2-1.9 s/step at one thread: 6-8 h in all, over several sittings. Running it again resumes from
# the last checkpoint; progress in RUN_DIR/pipeline.log and RUN_DIR/diffusion/log.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${1:?usage: $0 DATA_DIR [RUN_DIR] [SEED] [THREADS]}"
RUN="${2:-$ROOT/train_runs/mel2d}"
mkdir -p "$RUN"
MODEL='{"latent_channels":80,"dims":2,"channels":[16,32,64,128],"attention_levels":[],"cond_standardize":true,"cond_dropout":0.12,"p_mean":-0.6,"p_std":1.4}'
TRAIN_ARGS="--steps 16000 --set first_cycle=0 --set data.frames=128 --set model=$MODEL" \
  WEIGHTS_DIR="$RUN/weights" exec "$ROOT/scripts/train_embedded_mel.sh" "$DATA" "$RUN" "${3:-0}" "${4:-1}"
