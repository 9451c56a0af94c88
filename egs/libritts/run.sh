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
#   --mini-size SIZE   tiny | default | stock  (mini corpus only; default: default = 460 designed training
#                      voices; stock = the 40 stock espeak-ng variants)
#   --seed N           mini corpus seed (default 0)
#   --data-dir DIR     data directory (default data)
#   --exp-dir DIR      experiment directory (default exp); run.log is written there
#   --download-dir DIR where LibriTTS archives are downloaded/extracted (default download)
#   --nj N             parallel jobs (default: number of CPUs)
#   --nproc N          training/tokenization processes under `accelerate launch` (default: the number
#                      of GPUs, or 1 without a GPU; on CPU, N > 1 runs N ranks of one thread each)
#   --accelerate-config FILE   an `accelerate config` file (multi-node, mixed precision, ...); replaces
#                      the launch settings built from --nproc
#   --codec-conf FILE  codec overrides YAML (default: conf/codec_mini.yaml for mini, conf/codec_paper.yaml
#                      for libritts)
#   --codec-args "k=v ..."   extra codec config overrides, e.g. "train.max_minutes=30 optim.lr=5e-4"
#   --dump-n-q N       codebooks written to the code dump (default: all of the codec's)
#   --tts-conf FILE    TTS overrides YAML for stages 5-6 (default: conf/tts_mini.yaml for mini,
#                      conf/tts_paper.yaml for libritts); its `ar:` / `nar:` sections apply per model
#   --align-args "k=v ..." extra forced-aligner overrides (stage 4), e.g. "train.max_minutes=6"
#   --ar-args "k=v ..."    extra AR config overrides (stage 5), e.g. "train.max_minutes=20"
#   --nar-args "k=v ..."   extra NAR config overrides (stage 6)
#   --zs-per-speaker N     stage 7: test utterances per unseen speaker in the zero-shot list (default 8;
#                      0 = all)
#   --synth-args "..."     extra `python -m tts.synthesize` options for stage 7, e.g. "--top-k 10"
#   --asr-model DIR    stage 8: a local Whisper / HuBERT-CTC transformers checkpoint instead of pocketsphinx
#   --eval-args "..."      extra `python -m tts.evaluate` options for stage 8, e.g. "--no-dnsmos"
#   --force            redo stages even if their .done sentinel exists
#
# Stages:
#   0  corpus: download LibriTTS (libritts) or synthesize the mini corpus (mini)
#   1  manifests: <data>/manifests/<subset>.jsonl
#   2  phonemes + text front end: <data>/phonemes/<subset>.jsonl, tokens.txt, frontend.json; leakage
#      check of the split: <data>/check.{md,json}
#   3  codec: train under `accelerate launch` (resumes from its newest checkpoint), export
#      <exp>/codec/model, and score it on test-clean against earlier checkpoints (<exp>/codec/eval.md,
#      learning curve in <exp>/codec/eval/)
#   4  codes: tokenize every subset with the trained codec -> <data>/codes/<subset>/ (docs/code_dump.md);
#      then train the forced aligner -> <exp>/aligner/ and write every subset's phoneme durations
#      -> <data>/durations/<subset>.jsonl (docs/durations.md)
#   5  AR: train the VALL-E AR under `accelerate launch` on stage 4's dump (resumes from its newest
#      checkpoint when run again) -> <exp>/ar/{checkpoints,model,tb,losses.jsonl,valid.jsonl,train_summary.json}
#   6  NAR: the same for the NAR -> <exp>/nar/
#   7  zero-shot synthesis of the test split: for each test utterance of an unseen speaker, its text
#      with a ~3 s prompt from ANOTHER utterance of the same speaker -> <exp>/synth/list.jsonl (the
#      (prompt, text, output) list others can score), <exp>/synth/prompts/, <exp>/synth/wavs/
#   8  evaluation: ground truth, codec resynthesis, ground-truth codebook 1 + NAR, and TTS rows (WER with
#      deletions / insertions, phoneme error rate when <exp>/aligner/model exists, speaker similarity,
#      DNSMOS, duration ratio TTS / ground truth, codec metrics) -> <exp>/eval/{report.md,report.json,*.png,examples/}
# A finished stage leaves .done.stage<N>.<name> (in <data>; stage 3's in <exp>) and is skipped next time.
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
nproc_train=""
accelerate_config=""
codec_conf=""
codec_args=""
dump_n_q=""
tts_conf=""
ar_args=""
nar_args=""
align_args=""
zs_per_speaker=8
synth_args=""
asr_model=""
eval_args=""
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
    --nproc) nproc_train="$2"; shift 2 ;;
    --accelerate-config) accelerate_config="$(abs_path "$2")"; shift 2 ;;
    --codec-conf) codec_conf="$(abs_path "$2")"; shift 2 ;;
    --codec-args) codec_args="$2"; shift 2 ;;
    --dump-n-q) dump_n_q="$2"; shift 2 ;;
    --tts-conf) tts_conf="$(abs_path "$2")"; shift 2 ;;
    --ar-args) ar_args="$2"; shift 2 ;;
    --align-args) align_args="$2"; shift 2 ;;
    --nar-args) nar_args="$2"; shift 2 ;;
    --zs-per-speaker) zs_per_speaker="$2"; shift 2 ;;
    --synth-args) synth_args="$2"; shift 2 ;;
    --asr-model) asr_model="$(abs_path "$2")"; shift 2 ;;
    --eval-args) eval_args="$2"; shift 2 ;;
    --force) force=true; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; usage 1 ;;
  esac
done

case "$corpus" in
  mini) subsets=("${mini_subsets[@]}"); default_codec_conf=conf/codec_mini.yaml; default_tts_conf=conf/tts_mini.yaml ;;
  libritts) subsets=("${libritts_subsets[@]}"); default_codec_conf=conf/codec_paper.yaml; default_tts_conf=conf/tts_paper.yaml ;;
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

# Run a command, logging it; its stderr (Python logging) also goes to run.log. Our progress bars are drawn
# only on a terminal (here stderr is a pipe: they log a line every 5% instead); a bar some other tool
# still redraws with carriage returns reaches run.log as its last state only.
run() {
  log "\$ $*"
  "$@" 2> >(tee >(awk '{ sub(/.*\r/, ""); print; fflush() }' >> "$exp_dir/run.log") >&2)
}

bash "$root/scripts/setup_env.sh"
venv="${NDVQ_VENV:-$root/.venv}"
python="$venv/bin/python"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

# stage_ok N NAME [DIR]: true if stage N is within [stage, stop_stage] and not already done
# (or --force). The sentinel lives in DIR (default: the data directory; stages that write into the
# experiment directory keep theirs there, so another --exp-dir runs them again). A sentinel
# written for another corpus is an error, not a silent skip.
stage_ok() {
  local n="$1" name="$2" done_file="${3:-$data_dir}/.done.stage$1.$2"
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
stage_done() { echo "$corpus" > "${3:-$data_dir}/.done.stage$1.$2"; log "stage $1 ($2): done"; }

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
  # the front end (normalise -> phonemise -> fixed symbol table) writes tokens.txt + frontend.json;
  # a mini corpus made with --accents per-speaker lists each speaker's accent in accents.tsv
  accents_tsv="$corpus_dir/LibriTTS/accents.tsv"
  run "$python" -m data_prep.phonemes --manifests "$data_dir/manifests" --out "$data_dir/phonemes" \
    --subsets "${subsets[@]}" --jobs "$nj" $( [ "$force" = true ] && echo --force ) \
    $( [ -f "$accents_tsv" ] && echo --speaker-languages "$accents_tsv" )
  run "$python" -m data_prep.check --data-dir "$data_dir" --no-audio
  stage_done 2 phonemes
fi

# ---- training launches ----------------------------------------------------------------------
# launch ARGS...: `accelerate launch` of a python module with this recipe's process layout.
launch() {
  local args=()
  [ -n "$gpus" ] || gpus=$("$python" -c "import torch; print(torch.cuda.device_count())")
  if [ -n "$accelerate_config" ]; then
    args=(--config_file "$accelerate_config")
  else
    local n="$nproc_train"
    [ -n "$n" ] || n=$gpus; [ "$n" -ge 1 ] || n=1
    args=(--num_processes "$n" --num_machines 1 --mixed_precision no --dynamo_backend no)
    [ "$n" -gt 1 ] && args+=(--multi_gpu)
    if [ "$gpus" -eq 0 ]; then
      # accelerate's --cpu starts one process only; ACCELERATE_USE_CPU keeps N real CPU ranks
      export ACCELERATE_USE_CPU=true
      if [ "$n" -gt 1 ]; then
        export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
      else
        # accelerate gives a single CPU process OMP_NUM_THREADS=1 unless told: one core of two sat idle
        # (measured: a codec step 0.37-0.41 s with 2 threads, 0.53-0.58 s with 1)
        args+=(--num_cpu_threads_per_process "${OMP_NUM_THREADS:-$(nproc 2>/dev/null || echo 1)}")
      fi
    fi
  fi
  run "$venv/bin/accelerate" launch "${args[@]}" "$@"
}
gpus=""

codec_dir="$exp_dir/codec"
codes_dir="$data_dir/codes"
[ -n "$codec_conf" ] || codec_conf="$recipe_dir/$default_codec_conf"
train_subset="${subsets[0]}"
valid_subset=dev-clean
test_subset=test-clean

if stage_ok 3 codec "$exp_dir"; then
  # A harmonic decoder (codec_mini.yaml) trains its F0 and voicing outputs on tracked F0: track the
  # training subset once (data/f0/<subset>.npz, written atomically, so an existing file is complete).
  f0_cache="$data_dir/f0/$train_subset.npz"
  f0_args=()
  # shellcheck disable=SC2086
  if "$python" -m codec.train --config "$codec_conf" $codec_args --needs-f0; then
    [ -f "$f0_cache" ] || run "$python" -m data_prep.pitch --manifest "$data_dir/manifests/$train_subset.jsonl" \
      --out "$f0_cache" --jobs "$nj"
    f0_args=("data.train_f0=[$f0_cache]")
  fi
  # shellcheck disable=SC2086  # codec_args is a list of key=value words
  launch -m codec.train --config "$codec_conf" \
    "train.exp_dir=$codec_dir" \
    "data.train_manifests=[$data_dir/manifests/$train_subset.jsonl]" \
    "data.valid_manifests=[$data_dir/manifests/$valid_subset.jsonl]" \
    ${f0_args[@]+"${f0_args[@]}"} $codec_args
  run "$python" -m codec.evaluate --exp-dir "$codec_dir" --oracles \
    --manifest "$data_dir/manifests/$test_subset.jsonl" --out "$codec_dir/eval"
  stage_done 3 codec "$exp_dir"
fi

if stage_ok 4 codes; then
  # one launch for every subset (one dump each): start-up and codec load are paid once
  tok_args=()
  for subset in "${subsets[@]}"; do
    tok_args+=(--out "$codes_dir/$subset" --manifest "$data_dir/manifests/$subset.jsonl"
               --phonemes "$data_dir/phonemes/$subset.jsonl")
  done
  launch -m codec.tokenize --model "$codec_dir/model" "${tok_args[@]}" \
    $( [ -n "$dump_n_q" ] && echo --n-q "$dump_n_q" )
  stage_done 4 codes
fi

# Stage 4, second half: the forced aligner (tts.align; its own sentinel in exp/). A small CTC phoneme
# recognizer trained on the training split's log-mels, framed like the codec; its Viterbi alignment
# gives every phoneme token of every dump its frames (docs/durations.md), which the AR trains on
# (model.ar_alignment=durations), and its recognizer scores phoneme error rates in stage 8.
aligner_dir="$exp_dir/aligner"
durations_dir="$data_dir/durations"
if stage_ok 4 align "$exp_dir"; then
  # shellcheck disable=SC2086  # align_args is a list of key=value words
  launch -m tts.align.train \
    "train.exp_dir=$aligner_dir" \
    "data.train_dump=$codes_dir/$train_subset" \
    "data.valid_dump=$codes_dir/$valid_subset" \
    "data.manifests=[$data_dir/manifests/$train_subset.jsonl,$data_dir/manifests/$valid_subset.jsonl]" \
    $align_args
  for subset in "${subsets[@]}"; do
    run "$python" -m tts.align.durations --model "$aligner_dir/model" --dump "$codes_dir/$subset" \
      --manifest "$data_dir/manifests/$subset.jsonl" --out "$durations_dir/$subset.jsonl"
  done
  stage_done 4 align "$exp_dir"
fi

# ---- stages 5-6: the VALL-E AR and NAR on the code dump (tts.train; resume from exp/<part>) ----
[ -n "$tts_conf" ] || tts_conf="$recipe_dir/$default_tts_conf"
# train_tts PART EXTRA_ARGS: one `accelerate launch -m tts.train` on the train/dev dumps of stage 4
train_tts() {
  local part="$1" extra="$2"
  # shellcheck disable=SC2086  # extra is a list of key=value words
  launch -m tts.train --part "$part" --config "$tts_conf" \
    "train.exp_dir=$exp_dir/$part" \
    "data.train_dump=$codes_dir/$train_subset" \
    "data.valid_dump=$codes_dir/$valid_subset" \
    "data.frontend_dir=$data_dir/phonemes" \
    "data.train_durations=$durations_dir/$train_subset.jsonl" \
    "data.valid_durations=$durations_dir/$valid_subset.jsonl" \
    $extra
}

if stage_ok 5 ar "$exp_dir"; then
  train_tts ar "$ar_args"
  stage_done 5 ar "$exp_dir"
fi

if stage_ok 6 nar "$exp_dir"; then
  train_tts nar "$nar_args"
  stage_done 6 nar "$exp_dir"
fi

# ---- stages 7-8: zero-shot synthesis of the test split and its evaluation ---------------------
synth_dir="$exp_dir/synth"
if stage_ok 7 synth "$exp_dir"; then
  run "$python" -m tts.zeroshot_list --manifest "$data_dir/manifests/$test_subset.jsonl" \
    --train-manifest "$data_dir/manifests/$train_subset.jsonl" --out "$synth_dir" \
    $( [ "$zs_per_speaker" -gt 0 ] && echo --max-per-speaker "$zs_per_speaker" )
  # exit 1 = some items failed (listed in results.jsonl; stage 8 counts them as missing); other = error
  rc=0
  # shellcheck disable=SC2086  # synth_args is a list of options
  run "$python" -m tts.synthesize --list "$synth_dir/list.jsonl" --out-dir "$synth_dir/wavs" \
    --exp-dir "$exp_dir" --seed "$seed" $synth_args || rc=$?
  if [ "$rc" -eq 1 ] && compgen -G "$synth_dir/wavs/*.wav" >/dev/null; then
    log "WARNING: some test items failed to synthesize; see $synth_dir/wavs/results.jsonl"
  elif [ "$rc" -ne 0 ]; then
    log "ERROR: stage 7 synthesis failed (exit $rc)"; exit "$rc"
  fi
  stage_done 7 synth "$exp_dir"
fi

if stage_ok 8 eval "$exp_dir"; then
  # shellcheck disable=SC2086  # eval_args is a list of options
  run "$python" -m tts.evaluate --list "$synth_dir/list.jsonl" --out "$exp_dir/eval" \
    --codec "$codec_dir/model" --nar "$exp_dir/nar/model" \
    --train-manifest "$data_dir/manifests/$train_subset.jsonl" --jobs "$nj" \
    $( [ -d "$exp_dir/aligner/model" ] && echo --aligner "$exp_dir/aligner/model" ) \
    $( [ -n "$asr_model" ] && echo --asr-model "$asr_model" ) $eval_args
  log "report: $exp_dir/eval/report.md"
  stage_done 8 eval "$exp_dir"
fi

log "finished stages $stage..$stop_stage (recipe dir: $recipe_dir)"
