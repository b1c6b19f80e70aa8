#!/usr/bin/env bash
# Reproduce the shipped embedded mel prior (src/audiosds/weights/embedded_mel) from a fixed seed: all the
# data, the 2-D U-Net over (bins, time) that won the design screen (scripts/screen_mel_design.sh;
# benchmarks/RESULTS.md, "Denoiser design screen"), 128-frame crops, one 16,000-step cosine. Its export
# goes to RUN_DIR/weights, not into the package (copy it there to ship a new run).
#
#   scripts/train_mel_unet2d.sh DATA_DIR [RUN_DIR] [SEED] [THREADS]   (defaults: -, train_runs/mel2d, 0, 1)
#
# About 1.2-1.9 s/step at one thread: 6-8 h in all, over several sittings. Running it again resumes from
# the last checkpoint; progress in RUN_DIR/pipeline.log and RUN_DIR/diffusion/log.txt. Extra flags go in
# TRAIN_ARGS, e.g. TRAIN_ARGS="--set precision=bfloat16" (0.55-0.6x the time per step on a CPU with
# AVX512-BF16; benchmarks/RESULTS.md, "Training in bfloat16"; not the shipped weights' float32 recipe).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${1:?usage: $0 DATA_DIR [RUN_DIR] [SEED] [THREADS]}"
RUN="${2:-$ROOT/train_runs/mel2d}"
mkdir -p "$RUN"
MODEL='{"latent_channels":80,"dims":2,"channels":[16,32,64,128],"attention_levels":[],"cond_standardize":true,"cond_dropout":0.12,"p_mean":-0.6,"p_std":1.4}'
TRAIN_ARGS="--steps 16000 --set first_cycle=0 --set data.frames=128 --set model=$MODEL ${TRAIN_ARGS:-}" \
  WEIGHTS_DIR="$RUN/weights" exec "$ROOT/scripts/train_embedded_mel.sh" "$DATA" "$RUN" "${3:-0}" "${4:-1}"
