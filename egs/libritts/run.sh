#!/usr/bin/env bash
# NDVQ LibriTTS recipe: data -> codec -> codes -> VALL-E (AR + NAR) -> synthesis -> evaluation.
#
#   bash egs/libritts/run.sh [options]          (works from any directory)
#
# Options (relative paths given on the command line are taken from the directory you run it in;
# the defaults are relative to egs/libritts/):
#   --stage N          first stage to run (default 0)
#   --stop-stage M     last stage to run (default 100)
#   --corpus NAME      mini (espeak-ng corpus, synthesized locally; default) | libritts (OpenSLR download)
#   --mini-size SIZE   tiny | default  (mini corpus only; default: default)
#   --seed N           mini corpus seed (default 0)
#   --data-dir DIR     data directory (default data)
#   --exp-dir DIR      experiment directory (default exp); run.log is written there
#   --download-dir DIR where LibriTTS archives are downloaded/extracted (default download)
#   --nj N             parallel jobs (default: number of CPUs)
#   --force            redo stages even if their .done sentinel exists
#
# Stages:
#   0  corpus: download LibriTTS (libritts) or synthesize the mini corpus (mini)
#   1  manifests: <data>/manifests/<subset>.jsonl
#   2  phonemes + symbol table: <data>/phonemes/<subset>.jsonl, <data>/phonemes/tokens.txt
#   3.. codec, codes, AR, NAR, synthesis, evaluation (to come; see the end of this file)
# A finished stage leaves <data>/.done.stage<N>.<name> and is skipped on the next run.
set -euo pipefail

# ---- subsets per corpus -------------------------------------------------------------------
mini_subsets=(train-clean-100 dev-clean test-clean)
libritts_subsets=(train-clean-100 train-clean-360 train-other-500 dev-clean test-clean)

# ---- defaults -----------------------------------------------------------------------------
stage=0
stop_stage=100
corpus=mini
mini_size=default
seed=0
data_dir=data
exp_dir=exp
download_dir=download
nj=$(nproc 2>/dev/null || echo 2)
force=false

caller_pwd="$(pwd)"
abs_path() { case "$1" in /*) echo "$1" ;; *) echo "$caller_pwd/$1" ;; esac; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit "${1:-1}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage|--stop_stage) stop_stage="$2"; shift 2 ;;
    --corpus) corpus="$2"; shift 2 ;;
    --mini-size) mini_size="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --data-dir) data_dir="$(abs_path "$2")"; shift 2 ;;
    --exp-dir) exp_dir="$(abs_path "$2")"; shift 2 ;;
    --download-dir) download_dir="$(abs_path "$2")"; shift 2 ;;
    --nj) nj="$2"; shift 2 ;;
    --force) force=true; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; usage 1 ;;
  esac
done

case "$corpus" in
  mini) subsets=("${mini_subsets[@]}") ;;
  libritts) subsets=("${libritts_subsets[@]}") ;;
  *) echo "run.sh: --corpus must be mini or libritts, not '$corpus'" >&2; exit 1 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")"
recipe_dir="$(pwd)"
root="$(cd ../.. && pwd)"
mkdir -p "$data_dir" "$exp_dir"

log() {
  local line
  line="$(date '+%Y-%m-%d %H:%M:%S') [run.sh] $*"
  echo "$line" >&2
  echo "$line" >> "$exp_dir/run.log"
}

# Run a command, logging it; its stderr (Python logging) also goes to run.log.
run() {
  log "\$ $*"
  "$@" 2> >(tee -a "$exp_dir/run.log" >&2)
}

bash "$root/scripts/setup_env.sh"
venv="${NDVQ_VENV:-$root/.venv}"
python="$venv/bin/python"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

# stage_ok N NAME: true if stage N is within [stage, stop_stage] and not already done
# (or --force). A sentinel written for another corpus is an error, not a silent skip.
stage_ok() {
  local n="$1" name="$2" done_file="$data_dir/.done.stage$1.$2"
  [ "$n" -ge "$stage" ] && [ "$n" -le "$stop_stage" ] || return 1
  if [ -f "$done_file" ] && [ "$force" != true ]; then
    if [ "$(cat "$done_file")" != "$corpus" ]; then
      log "ERROR: $done_file was made for corpus '$(cat "$done_file")', not '$corpus': use another --data-dir or --force"
      exit 1
    fi
    log "stage $n ($name): already done ($done_file), skipping"
    return 1
  fi
  log "stage $n ($name): start"
  return 0
}
stage_done() { echo "$corpus" > "$data_dir/.done.stage$1.$2"; log "stage $1 ($2): done"; }

log "corpus=$corpus subsets=${subsets[*]} data_dir=$data_dir exp_dir=$exp_dir nj=$nj stages=$stage..$stop_stage"

if [ "$corpus" = mini ]; then corpus_dir="$data_dir/mini"; else corpus_dir="$download_dir"; fi

if stage_ok 0 corpus; then
  if [ "$corpus" = mini ]; then
    run "$python" -m data_prep.mini_corpus --root "$corpus_dir" --size "$mini_size" --seed "$seed" --jobs "$nj"
  else
    run "$python" -m data_prep.download --dest "$corpus_dir" --subsets "${subsets[@]}"
  fi
  stage_done 0 corpus
fi

if stage_ok 1 manifests; then
  run "$python" -m data_prep.libritts --corpus-dir "$corpus_dir" --out "$data_dir/manifests" \
    --subsets "${subsets[@]}" --jobs "$nj" --min-duration 0.5 --max-duration 20
  stage_done 1 manifests
fi

if stage_ok 2 phonemes; then
  run "$python" -m data_prep.phonemes --manifests "$data_dir/manifests" --out "$data_dir/phonemes" \
    --subsets "${subsets[@]}" --jobs "$nj" $( [ "$force" = true ] && echo --force )
  stage_done 2 phonemes
fi

# ---- later stages go here, each as one block of the same shape: ---------------------------
#   if stage_ok 3 codec; then run "$python" -m codec.train ...; stage_done 3 codec; fi
#   3 train codec      -> $exp_dir/codec
#   4 dump codes       -> $data_dir/codes
#   5 train AR         -> $exp_dir/ar
#   6 train NAR        -> $exp_dir/nar
#   7 synthesize       -> $exp_dir/synth
#   8 evaluate         -> $exp_dir/eval

log "finished stages $stage..$stop_stage (recipe dir: $recipe_dir)"
