#!/usr/bin/env bash
# A small testbed for the mel prior's denoiser design: the same data, seed and steps for each candidate,
# then generation from held-out phrasings judged per family. The testbed holds the eight steady tonal
# families the shipped 1-D prior never generates right, beside four it does.
#
#   scripts/screen_mel_design.sh DATA_DIR [RUN_DIR] [STEPS] [CANDIDATES...]
#   (defaults: -, train_runs/screen, 2000, "unet1d unet2d")
#
# DATA_DIR is the real-sound folder: the testbed trains on the world alone, with its plate responses
# for the reverb attribute. Starts itself in the background with nohup and returns; progress in RUN_DIR/pipeline.log.
# Each candidate trains in RUN_DIR/<name> (resumable: running the script again continues), then
# `benchmarks/mel_prior.py --sections gen` writes RUN_DIR/<name>/gen/report.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "${1:?usage: $0 DATA_DIR [RUN_DIR] [STEPS] [CANDIDATES...]}" && pwd)"
RUN="$(mkdir -p "${2:-$ROOT/train_runs/screen}" && cd "${2:-$ROOT/train_runs/screen}" && pwd)"
STEPS="${3:-2000}"
shift $(($# < 3 ? $# : 3))
CANDIDATES=("$@")
[ ${#CANDIDATES[@]} -eq 0 ] && CANDIDATES=(unet1d unet2d)

if [ "${AUDIOSDS_PIPELINE_CHILD:-0}" != 1 ]; then
  AUDIOSDS_PIPELINE_CHILD=1 setsid nohup "${BASH_SOURCE[0]}" "$DATA" "$RUN" "$STEPS" "${CANDIDATES[@]}" \
    >>"$RUN/pipeline.log" 2>&1 </dev/null &
  echo $! >"$RUN/pipeline.pid"
  echo "design screen started (pid $!); follow it with: tail -f $RUN/pipeline.log"
  exit 0
fi

FAMILIES='["organ","flute","bell","whistle","brass","pluck","fm","hum","rain","birds","engine","snare"]'
COMMON=(
  --data "$DATA" --set "data.families=$FAMILIES" --set "data.real_classes=[]" --set "data.world_clips=2400" --set "data.frames=128"
  --set "data.eval_world=48" --set "warmup=200" --set "checkpoint_every=250"
)
# The shipped design (1-D over time, 80 bins as channels) and a 2-D U-Net over (bins, time) with a
# bin-position channel, each level halving both axes.
declare -A MODEL=(
  [unet1d]='{"latent_channels":80,"channels":[128,192,256],"attention_levels":[2],"cond_standardize":true,"cond_dropout":0.12,"p_mean":-0.6,"p_std":1.4}'
  [unet2d]='{"latent_channels":80,"dims":2,"channels":[16,32,64,128],"attention_levels":[],"cond_standardize":true,"cond_dropout":0.12,"p_mean":-0.6,"p_std":1.4}'
)

stamp() { echo "$(date '+%Y-%m-%d %H:%M:%S') $*"; }
for name in "${CANDIDATES[@]}"; do
  out="$RUN/$name"
  RESUME=""
  [ -f "$out/checkpoint.pt" ] && RESUME="--resume"
  stamp "train $name: $STEPS steps"
  OMP_NUM_THREADS=1 python -m audiosds.training.train_mel --out "$out" --cache "$RUN" --seed 0 --threads 1 \
    --steps "$STEPS" "${COMMON[@]}" --set "model=${MODEL[$name]}" $RESUME
  stamp "judge $name"
  OMP_NUM_THREADS=1 python "$ROOT/benchmarks/mel_prior.py" --data "$DATA" --weights "$out/export" \
    --sections gen --classes organ flute bell whistle brass pluck fm hum rain birds engine snare \
    --real-classes --per-class 4 --cfg 4 --seed 0 --threads 1 --save-per-class 1 --out "$out/gen"
done
stamp "screen done"
