#!/usr/bin/env bash
# Reproduce the embedded mel prior's weights from a fixed seed: the denoiser over log-mels of the world
# plus the real-sound folder, then a copy of the exported files into the package.
#
#   scripts/train_embedded_mel.sh DATA_DIR [RUN_DIR] [SEED] [THREADS]   (defaults: -, train_runs/mel, 0, 1)
#
# DATA_DIR is the real-sound folder (manifest.csv: ESC-10, drum one-shots, spoken digits, plate IRs).
# The weights are bit-reproducible for a given seed and thread count on one machine; the 20,000 steps
# (a 12,000-step cosine cycle, then a warm restart) take about 3.4 h at one thread (0.55-0.75 s/step). Extra flags: TRAIN_ARGS="--steps 200".
#
# Starts itself in the background with nohup and returns. Progress: RUN_DIR/pipeline.log and
# RUN_DIR/diffusion/log.txt. Running it again resumes from the last checkpoint (a finished run only
# re-exports). Stop it with: kill -- -$(cat RUN_DIR/pipeline.pid)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "${1:?usage: $0 DATA_DIR [RUN_DIR] [SEED] [THREADS]}" && pwd)"
RUN="$(mkdir -p "${2:-$ROOT/train_runs/mel}" && cd "${2:-$ROOT/train_runs/mel}" && pwd)"
SEED="${3:-0}"
THREADS="${4:-1}"
WEIGHTS="${WEIGHTS_DIR:-$ROOT/src/audiosds/weights/embedded_mel}"  # WEIGHTS_DIR: install elsewhere

if [ "${AUDIOSDS_PIPELINE_CHILD:-0}" != 1 ]; then
  AUDIOSDS_PIPELINE_CHILD=1 setsid nohup "${BASH_SOURCE[0]}" "$DATA" "$RUN" "$SEED" "$THREADS" \
    >>"$RUN/pipeline.log" 2>&1 </dev/null &
  echo $! >"$RUN/pipeline.pid"
  echo "embedded mel prior training started (pid $!); follow it with: tail -f $RUN/pipeline.log"
  exit 0
fi

stamp() { echo "$(date '+%Y-%m-%d %H:%M:%S') $*"; }
stamp "pipeline start: data $DATA, run $RUN, seed $SEED, $THREADS threads, python $(command -v python)"
RESUME=""
[ -f "$RUN/diffusion/checkpoint.pt" ] && RESUME="--resume"
OMP_NUM_THREADS="$THREADS" python -m audiosds.training.train_mel --out "$RUN/diffusion" --cache "$RUN" \
  --data "$DATA" --seed "$SEED" --threads "$THREADS" $RESUME ${TRAIN_ARGS:-}
stamp "copy weights to $WEIGHTS"
mkdir -p "$WEIGHTS"
cp "$RUN/diffusion/export/"* "$WEIGHTS/"
du -ch "$WEIGHTS"/*.safetensors | tail -n 1
stamp "pipeline done"
