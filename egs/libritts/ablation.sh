#!/usr/bin/env bash
# NDVQ vs RVQ ablation: the same codec trained as five quantizer variants x seeds, each for
# the same number of steps, evaluated on unseen speakers (clean with pitch, noisy input, code flips, code
# statistics), optionally the TTS trained on every run's codes, with a report: <out>/report.md,
# report.json, plots/.
#
#   bash egs/libritts/ablation.sh [options]          (works from any directory; needs run.sh stages 0-2)
#   bash egs/libritts/ablation.sh --downstream       the whole question on the mini corpus: 5 variants x
#                                                    seeds 0,1,2, codec and TTS at the recipe's budgets
#
# Every option goes to `python -m experiments.ablation` (see docs/ablation.md, or --help), e.g.
#   --steps N            training steps per run: the budget (default: the base config's train.max_steps,
#                        1400 in conf/codec_mini.yaml; wall-clock cap off)
#   --seeds 0,1,2        seeds (default 0,1,2)
#   --runs ndvq,rvq      only these variants (or variant/seedN) in this invocation
#   --stop-after N       train at most N runs now (run again to continue)
#   --report-only        rebuild the report from the finished runs
#   --corpus libritts    full scale: base configs conf/codec_paper.yaml, conf/tts_paper.yaml; --nproc N for N GPUs
#   --out DIR            default egs/libritts/exp/ablation
#   --tiny               mechanics only (a few steps, 2 items, 1 seed; with --downstream a 1-layer TTS)
# A harmonic decoder (codec_mini.yaml) trains on tracked F0: the F0 cache <data>/f0/<train subset>.npz of
# run.sh stage 3 is reused, or made once before the first run (python -m data_prep.pitch).
# Downstream TTS (run.sh stages 4-8 per codec run in <out>/downstream/<variant>/seed<S>/):
#   --downstream         after the codec runs, train and score the TTS on every codec run's codes
#   --downstream-only    only that, on the finished codec runs (nothing retrained or re-evaluated)
#   --downstream-seeds 0,1   a subset of --seeds feeding the TTS (default: every seed)
#   --ar-steps N --nar-steps M   the TTS budget in steps, the same for every run (default: the TTS
#                        config's AR and NAR train.max_steps, 700 and 600 in conf/tts_mini.yaml)
#   --tts-args / --ar-args / --nar-args "k=v ..."   TTS overrides (both parts / one part)
#   --tts-conf FILE --zs-per-speaker N --synth-args "..." --eval-args "..."   passed to run.sh
# Run it again after an interruption: finished runs are skipped, an interrupted one resumes from its
# newest checkpoint, the report is rebuilt from what has finished (missing runs are marked).
# The log (timestamped, like run.sh's) goes to <out>/ablation.log.
set -euo pipefail

caller_pwd="$(pwd)"
recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$recipe_dir/../.." && pwd)"

# The log lives in --out (peeked at here; the Python side parses every option itself).
out="$recipe_dir/exp/ablation"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --out) out="${args[i + 1]:-$out}" ;;
    --out=*) out="${args[i]#--out=}" ;;
    -h|--help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
      PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "${NDVQ_VENV:-$root/.venv}/bin/python" -m experiments.ablation --help
      exit 0 ;;
  esac
done
case "$out" in /*) ;; *) out="$caller_pwd/$out" ;; esac
mkdir -p "$out"

log() {
  local line
  line="$(date '+%Y-%m-%d %H:%M:%S') [ablation.sh] $*"
  echo "$line" >&2
  echo "$line" >> "$out/ablation.log"
}

bash "$root/scripts/setup_env.sh"
venv="${NDVQ_VENV:-$root/.venv}"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

log "\$ python -m experiments.ablation $*"
rc=0
"$venv/bin/python" -m experiments.ablation "$@" 2> >(tee -a "$out/ablation.log" >&2) || rc=$?
if [ "$rc" -ne 0 ]; then
  log "ERROR: experiments.ablation exited with $rc (run the same command again to resume)"
  exit "$rc"
fi
log "report: $out/report.md"
