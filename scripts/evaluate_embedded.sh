#!/usr/bin/env bash
# Evaluate a candidate embedded prior (a weights folder, e.g. RUN/diffusion/export) with the headline
# benchmarks of issues #3 and #4, before deciding to ship it:
#
#   scripts/evaluate_embedded.sh WEIGHTS_DIR OUT_DIR [STREAMS]        (STREAMS: 2 by default)
#
# Runs the jobs on STREAMS one-thread worker processes (2 = both cores of a 2-core machine: run it when
# no training is running) in the background with nohup and returns. Reports (markdown, one per
# benchmark) land in OUT_DIR; progress in OUT_DIR/evaluate.log and OUT_DIR/*.err. Job results are
# cached in OUT_DIR/cache-*, so running it again resumes. Seeds and settings are those of the
# README's benchmark table (seed 0): about 45 minutes of one-thread work in all.
#
#   1. embedded_prior.py --sections ae gen attr --gen-per-family 3   (autoencoder, generation, attributes)
#   2. prior_diagnostics.py --sections bands moments
#   3. prior_prompt_scores.py --clips 4
#   4. separation.py --sources-from world  --parametrizations masks  (Table-1, 15 mixtures)
#   5. separation.py --sources-from prior  --parametrizations masks
#   6. synthesis_curves.py --seeds 5 --plot                          (FM and impact, 50 runs)
#
# Stop it with: kill -- -$(cat OUT_DIR/evaluate.pid)
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: scripts/evaluate_embedded.sh WEIGHTS_DIR OUT_DIR [STREAMS]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEIGHTS="$(cd "$1" && pwd)"
for f in autoencoder.safetensors autoencoder.json denoiser.safetensors denoiser.json; do
  if [ ! -f "$WEIGHTS/$f" ]; then
    echo "evaluate_embedded: $WEIGHTS has no $f (expected an embedded prior weights folder)" >&2
    exit 2
  fi
done
OUT="$(mkdir -p "$2" && cd "$2" && pwd)"
STREAMS="${3:-2}"

if [ "${AUDIOSDS_EVAL_CHILD:-0}" != 1 ]; then
  AUDIOSDS_EVAL_CHILD=1 setsid nohup "${BASH_SOURCE[0]}" "$WEIGHTS" "$OUT" "$STREAMS" >>"$OUT/evaluate.log" 2>&1 \
    </dev/null &
  echo $! >"$OUT/evaluate.pid"
  echo "evaluation started (pid $!); follow it with: tail -f $OUT/evaluate.log"
  exit 0
fi

cd "$ROOT"
stamp() { echo "$(date '+%Y-%m-%d %H:%M:%S') $*"; }
W=(--weights "$WEIGHTS")
SEP=(python benchmarks/separation.py --prior embedded "${W[@]}" --mixtures 3 --seed 0 --threads 1
  --parametrizations masks)
SYN=(python benchmarks/synthesis_curves.py --prior embedded "${W[@]}" --seeds 5 --seed 0 --threads 1
  --cache "$OUT/cache-synthesis")

# One function per job; JOBS are handed out in this order to the free streams.
job_embedded_prior() {
  python benchmarks/embedded_prior.py "${W[@]}" --seed 0 --threads 1 --sections ae gen attr \
    --gen-per-family 3 --out "$OUT/embedded_prior.md"
}
job_diagnostics() {
  python benchmarks/prior_diagnostics.py "${W[@]}" --seed 0 --threads 1 --sections bands moments \
    --out "$OUT/prior_diagnostics.md"
}
job_prompt_scores() {
  python benchmarks/prior_prompt_scores.py --prior embedded "${W[@]}" --clips 4 --seed 0 --threads 1 \
    --out "$OUT/prior_prompt_scores.md"
}
job_separation_world() {
  "${SEP[@]}" --sources-from world --cache "$OUT/cache-separation-world" --out "$OUT/separation_world.md"
}
job_separation_prior() {
  "${SEP[@]}" --sources-from prior --cache "$OUT/cache-separation-prior" --out "$OUT/separation_prior.md"
}
job_synthesis_0() { "${SYN[@]}" --shard 0/2; }
job_synthesis_1() { "${SYN[@]}" --shard 1/2; }
JOBS=(embedded_prior diagnostics prompt_scores separation_world separation_prior synthesis_0 synthesis_1)

stamp "evaluate $WEIGHTS -> $OUT on $STREAMS streams"
running=0
for name in "${JOBS[@]}"; do
  while [ "$running" -ge "$STREAMS" ]; do
    wait -n || true
    running=$((running - 1))
  done
  stamp "start $name"
  (
    start=$(date +%s)
    if "job_$name" >"$OUT/$name.out" 2>"$OUT/$name.err"; then
      stamp "done $name ($(($(date +%s) - start)) s)"
    else
      stamp "FAILED $name (exit $?; see $OUT/$name.err)"
    fi
  ) &
  running=$((running + 1))
done
wait
stamp "synthesis report"
"${SYN[@]}" --report-only --plot "$OUT/synthesis_curves.png" --out "$OUT/synthesis_curves.md" \
  >"$OUT/synthesis_report.out" 2>"$OUT/synthesis_report.err" || stamp "FAILED synthesis report"
stamp "evaluation done"
