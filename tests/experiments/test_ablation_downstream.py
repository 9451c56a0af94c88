"""The ablation's downstream TTS mechanics (`--downstream` / `--downstream-only`), with a stub run.sh.

The stub stands in for egs/libritts/run.sh stages 4-8: it records its arguments, checks that the
directory it was given looks like a recipe data/exp pair with the run's codec, and writes what stage 8
and stages 5-6 would (exp/eval/report.json, exp/{ar,nar}/valid.jsonl, sentinels) from the numbers the
test put beside the codec (stub.json), so every (variant, seed) gets known values. The real run.sh is
exercised by tests/recipe/.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from data_prep.frontend import TextFrontend
from experiments.ablation import downstream as D
from experiments.ablation.__main__ import downstream_settings, main, parse_args
from experiments.ablation.plan import Run, mark_trained, variant

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "egs" / "libritts" / "conf" / "codec_mini.yaml"
TTS_MINI = REPO / "egs" / "libritts" / "conf" / "tts_mini.yaml"

# Fails when STUB_FAIL is set (an interrupted run); otherwise turns the codec's stub.json into stage 8's
# report and the AR's / NAR's last dev rows.
STUB = r'''#!/usr/bin/env bash
set -euo pipefail
{ printf "%q " "$@"; echo; } >> "$STUB_LOG"
while [ $# -gt 0 ]; do
  case "$1" in --data-dir) data="$2"; shift 2 ;; --exp-dir) exp="$2"; shift 2 ;;
               --stop-stage) stop="$2"; shift 2 ;; *) shift ;; esac
done
test -f "$data/manifests/train-clean-100.jsonl" && test -f "$data/.done.stage2.phonemes"
test -f "$exp/codec/model/config.json" && test -f "$exp/.done.stage3.codec"
mkdir -p "$data/codes/train-clean-100" "$exp/ar" "$exp/nar" "$exp/eval"
echo mini > "$data/.done.stage4.codes"
if [ "$stop" = 4 ]; then             # the shared aligner
  mkdir -p "$exp/aligner/model" "$data/durations"; echo weights > "$exp/aligner/model/model.safetensors"
  echo '{"dump": "'"$data"'/codes/test-clean"}' > "$data/durations/test-clean.meta.json"
  echo mini > "$exp/.done.stage4.align"; exit 0
fi
test -f "$exp/.done.stage4.align" && test -d "$exp/aligner/model" && test -d "$data/durations"
if [ -n "${STUB_FAIL:-}" ]; then exit 3; fi
python3 - "$exp" <<'EOF'
import json, sys
exp = sys.argv[1]
s = json.load(open(f"{exp}/codec/model/stub.json"))
json.dump({"step": 5, "minutes": 0.1, "stop_reason": "max_steps"}, open(f"{exp}/ar/train_summary.json", "w"))
open(f"{exp}/ar/valid.jsonl", "w").write(json.dumps({"step": 2, "loss_k1": 9.0, "acc_k1": 0.0}) + "\n"
                                         + json.dumps({"step": 5, "loss_k1": s["ar_ce"], "acc_k1": 0.125}) + "\n")
open(f"{exp}/nar/valid.jsonl", "w").write(json.dumps({"step": 4, "loss_k2": 4.0, "acc_k2": 0.1,
                                                      "loss_k3": 5.0, "acc_k3": 0.3}) + "\n")
row = lambda w, p, x: {"wer": w, "per": p, "sim": x, "n": 4, "missing": 0,
                       "ci": {"wer": [w - 0.1, w + 0.1], "per": [p - 0.1, p + 0.1], "sim": [x - 0.1, x + 0.1]}}
json.dump({"rows": {"ground_truth": row(0.1, 0.05, 0.9), "resynthesis": row(0.2, 0.3, 0.7),
                    "gt_cb1_nar": row(s["wer"] - 0.05, 0.3, 0.7),
                    "tts": {**row(s["wer"], s["per"], s["sim"]), "pitch": {"within_2st": 0.5, "abs_st_mean": 1.5}}},
           "sim_floor": 0.5, "targets": {},
           "setting": {"n_items": 4, "n_speakers": 2, "n_q": 3, "asr": "stub-asr", "asr_constrained": True,
                       "speaker_encoder": "stub-spk"}}, open(f"{exp}/eval/report.json", "w"))
EOF
echo "PER: the recognizer of \`$exp/aligner/model\` (https://example.org/x)" > "$exp/eval/report.md"
echo mini > "$exp/.done.stage8.eval"
'''


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for sub in ("manifests", "phonemes", "mini"):
        (data / sub).mkdir(parents=True)
    for subset in ("train-clean-100", "test-clean"):
        (data / "manifests" / f"{subset}.jsonl").write_text("{}\n")
    TextFrontend.default().save(data / "phonemes")
    out = tmp_path / "out"
    stub = tmp_path / "run_stub.sh"
    stub.write_text(STUB)
    log = tmp_path / "stub.log"
    monkeypatch.setattr(D, "RUN_SH", stub)
    monkeypatch.setenv("STUB_LOG", str(log))
    monkeypatch.delenv("STUB_FAIL", raising=False)
    return tmp_path, data, out, log


def _trained_codec(out: Path, name: str, seed: int = 0, steps: int = 3, wer: float = 0.5, per: float = 0.5,
                   sim: float = 0.6, ar_ce: float = 3.0) -> Path:
    """A codec run as the ablation leaves it (the sentinel, an exported model directory) with the numbers
    the stub's stage 8 reports for the TTS trained on it."""
    run = out / "runs" / name / f"seed{seed}"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    (run / "model" / "stub.json").write_text(json.dumps({"wer": wer, "per": per, "sim": sim, "ar_ce": ar_ce}))
    mark_trained(Run(variant(name), seed, run), steps)
    return run


def _args(data, out, *extra):
    return ["--tiny", "--codec-conf", str(CONF), "--out", str(out), "--data-dir", str(data), "--steps", "3",
            "--no-plots", *extra]


def _calls(log: Path) -> list[list[str]]:
    return [shlex.split(ln) for ln in log.read_text().splitlines()] if log.is_file() else []


def _opt(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def test_downstream_runs_every_seed_and_the_report_judges_the_seed_spread(setup):
    tmp, data, out, log = setup
    # per seed: ndvq's WER is worse than rvq's by far more than the spread, its PER better, its SIM equal
    for s, (w_n, w_r, p_n, p_r, x) in enumerate([(0.70, 0.20, 0.40, 0.50, 0.60), (0.80, 0.30, 0.42, 0.52, 0.62)]):
        _trained_codec(out, "ndvq", s, wer=w_n, per=p_n, sim=x, ar_ce=2.0 + 0.1 * s)
        _trained_codec(out, "rvq", s, wer=w_r, per=p_r, sim=x)
    _trained_codec(out, "ndvq_sample_weight", 0, steps=2)       # short of the budget: no downstream yet
    main(_args(data, out, "--seeds", "0,1", "--downstream-only", "--ar-steps", "7", "--nar-steps", "4"))

    calls = _calls(log)
    # first the aligner every run shares (stage 4 on the first codec's dump: it reads log-mels, not codes)
    shared = out / "downstream" / "aligner"
    assert _opt(calls[0], "--stop-stage") == "4" and _opt(calls[0], "--exp-dir") == str(shared / "exp")
    assert (shared / "exp" / "codec" / "model").resolve() == (out / "runs" / "ndvq" / "seed0" / "model").resolve()
    calls = calls[1:]
    runs = [(v, s) for s in (0, 1) for v in ("ndvq", "rvq")]      # every seed, seed-major
    assert len(calls) == len(runs)
    for call, (v, s) in zip(calls, runs):
        rdir = out / "downstream" / v / f"seed{s}"
        assert _opt(call, "--data-dir") == str(rdir / "data") and _opt(call, "--exp-dir") == str(rdir / "exp")
        assert (_opt(call, "--stage"), _opt(call, "--stop-stage")) == ("4", "8") and _opt(call, "--seed") == str(s)
        # the replicate's TTS seed, then the budget in steps with the wall clock off, after the tiny TTS
        ar = _opt(call, "--ar-args").split()
        assert ar[-3:] == [f"train.seed={s}", "train.max_minutes=null", "train.max_steps=7"] and "model.n_layers=1" in ar
        assert _opt(call, "--nar-args").split()[-3:] == [f"train.seed={s}", "train.max_minutes=null", "train.max_steps=4"]
        assert _opt(call, "--zs-per-speaker") == "1" and "--no-dnsmos" in _opt(call, "--eval-args")
        for sub in ("manifests", "phonemes", "mini"):
            assert (rdir / "data" / sub).resolve() == (data / sub).resolve()
        assert (rdir / "exp" / "codec" / "model").resolve() == (out / "runs" / v / f"seed{s}" / "model").resolve()
        assert (rdir / "exp" / "aligner").resolve() == (shared / "exp" / "aligner").resolve()
        assert (rdir / "data" / "durations").resolve() == (shared / "data" / "durations").resolve()
        res = json.loads((rdir / "result.json").read_text())
        assert (res["run"], res["seed"], res["codec_run"], res["codec_step"]) == (f"{v}/seed{s}", s, f"{v}/seed{s}", 3)
        assert res["tts"]["ar"]["valid"]["ce"] == pytest.approx(2.0 + 0.1 * s if v == "ndvq" else 3.0)  # the LAST row
        assert res["tts"]["nar"]["valid"]["top1"] == pytest.approx(0.2)              # mean over codebooks 2, 3
    assert not (out / "downstream" / "ndvq_sample_weight").exists()
    # the real run.sh accepts every option the stub got (from stage 9: options parsed, no stage run)
    args = [a if i == 0 or calls[0][i - 1] != "--stage" else "9" for i, a in enumerate(calls[0])]
    done = subprocess.run(["bash", str(REPO / "egs" / "libritts" / "run.sh"), *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stages=9..8" in done.stderr

    md = (out / "report.md").read_text()
    ds = md.split("## Downstream TTS")[1]
    assert "every codec seed: 0, 1" in ds and "AR 7 + NAR 4 steps" in ds
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in ds.splitlines() if ln.startswith("| ")]
    head = next(c[1:] for c in cells if c[0] == "metric")
    table = {c[0]: dict(zip(head, c[1:])) for c in cells}
    wer = table["TTS WER ↓"]
    assert wer["ndvq"] == "0.750 ± 0.071 [0.700, 0.800] (n=2)" and wer["rvq"] == "0.250 ± 0.071 [0.200, 0.300] (n=2)"
    assert wer["ndvq_authors"] == "missing"
    # the NAR alone on the recording's codebook 1: the AR's and the NAR's shares told apart
    assert table["ground-truth codebook 1 + NAR WER ↓"]["ndvq"] == "0.700 ± 0.071 [0.650, 0.750] (n=2)"
    assert table["AR dev cross-entropy, codebook 1 (nats) ↓"]["ndvq"] == "2.050 ± 0.071 [2.000, 2.100] (n=2)"
    assert "| ndvq/seed1 | done | 0.800 [0.700, 0.900] | 0.420 [0.320, 0.520] | 0.620 [0.520, 0.720] |" in ds
    assert "| ndvq_sample_weight/seed0 | no_codec | missing |" in ds and "| ndvq_authors/seed1 | no_codec |" in ds
    verdict = md.split("## Verdict")[1].split("## Downstream TTS")[0]
    assert "**Downstream TTS, ndvq** vs **rvq** (2 vs 2 seeds, AR 7 + NAR 4 steps each, 4 items)" in verdict
    assert "- TTS WER: loss (-0.5 in ndvq's favour vs seed spread 0.071)" in verdict
    assert "- TTS PER: win (+0.1 in ndvq's favour vs seed spread 0.014)" in verdict
    assert "- TTS SIM (to the prompt): tie (+0 in ndvq's favour" in verdict
    assert ("Not finished (left out of every number): ndvq_authors/seed0, ndvq_sample_weight/seed0, "
            "ndvq_mean_residual/seed0, ndvq_authors/seed1, ndvq_sample_weight/seed1, ndvq_mean_residual/seed1."
            in verdict)
    rep = json.loads((out / "report.json").read_text())
    comps = {(c["variant"], c["label"]): c["outcome"] for c in rep["downstream_comparisons"]}
    assert comps[("ndvq", "TTS WER")] == "loss" and comps[("ndvq", "AR dev cross-entropy, codebook 1 (nats)")] == "win"
    assert rep["downstream_values"]["tts|wer"]["rvq"] == pytest.approx([0.2, 0.3])


def test_resume_skips_finished_runs_and_seeds_can_be_picked(setup, monkeypatch, caplog):
    tmp, data, out, log = setup
    caplog.set_level(logging.INFO, logger="experiments.ablation")
    for s in (0, 1):
        for v in ("ndvq", "rvq"):
            _trained_codec(out, v, s)
    base = _args(data, out, "--seeds", "0,1", "--downstream-only")
    main(base + ["--stop-after", "0"])
    assert _calls(log) == []
    assert "| rvq/seed0 | missing | missing |" in (out / "report.md").read_text()

    # a subset of the seeds; the report still lists the others, as missing
    main(base + ["--downstream-seeds", "1"])
    assert [_opt(c, "--exp-dir") for c in _calls(log)] == [str(out / "downstream" / d / "exp")
                                                           for d in ("aligner", "ndvq/seed1", "rvq/seed1")]
    md = (out / "report.md").read_text()
    assert "| ndvq/seed1 | done |" in md and "| ndvq/seed0 | missing |" in md
    assert "- TTS WER: undetermined (+0 in ndvq's favour)" in md          # one seed each: no spread to judge by

    # an interrupted run: its directory stays, without a result
    monkeypatch.setenv("STUB_FAIL", "1")
    with pytest.raises(RuntimeError, match="run the ablation again to resume"):
        main(base + ["--runs", "rvq/seed0"])
    rdir = out / "downstream" / "rvq" / "seed0"
    assert (rdir / "downstream_run.json").is_file() and not (rdir / "result.json").exists()
    monkeypatch.delenv("STUB_FAIL")

    # every seed now: the finished seed-1 runs are skipped untouched, the interrupted one resumes in place
    mtime = (out / "downstream" / "rvq" / "seed1" / "result.json").stat().st_mtime_ns
    caplog.clear()
    main(base)
    new = [_opt(c, "--exp-dir") for c in _calls(log)[4:]]         # not the aligner again
    assert new == [str(out / "downstream" / v / "seed0" / "exp") for v in ("ndvq", "rvq")]
    assert "ndvq/seed1 downstream: done, skipping" in caplog.text and "rvq/seed1 downstream: done, skipping" in caplog.text
    assert (out / "downstream" / "rvq" / "seed1" / "result.json").stat().st_mtime_ns == mtime
    assert (rdir / "result.json").is_file()
    assert "(2 vs 2 seeds" in (out / "report.md").read_text()

    # again: nothing runs; a deleted result is collected from the finished stage 8 without run.sh
    (rdir / "result.json").unlink()
    main(base)
    assert len(_calls(log)) == 6 and (rdir / "result.json").is_file()
    # another budget on started directories is an error, not a silent mix
    with pytest.raises(ValueError, match="other settings"):
        main(base + ["--ar-steps", "9", "--runs", "rvq/seed0"])
    # --report-only without --downstream still shows the finished runs
    main(_args(data, out, "--seeds", "0,1", "--report-only"))
    assert "| rvq/seed0 | done |" in (out / "report.md").read_text()


def test_default_tts_budget_is_the_tts_configs(tmp_path):
    """Without --ar-steps / --nar-steps the budget is what the TTS config ships, read, never a copied number."""
    from tts.train import load_tts_config
    args = parse_args(["--downstream-only"])
    s = downstream_settings(args, tmp_path)
    assert (s.ar_steps, s.nar_steps) == tuple(load_tts_config([str(TTS_MINI)], [], p).train.max_steps
                                              for p in ("ar", "nar"))
    assert s.zs_per_speaker is None                       # run.sh's own test items, as the recipe
    conf = tmp_path / "tts.yaml"
    conf.write_text("train:\n  max_steps: 50\nar:\n  train:\n    max_steps: 123\n")
    s = downstream_settings(parse_args(["--downstream", "--tts-conf", str(conf)]), tmp_path)
    assert (s.ar_steps, s.nar_steps) == (123, 50)
    s = downstream_settings(parse_args(["--downstream", "--tts-conf", str(conf), "--nar-steps", "7"]), tmp_path)
    assert (s.ar_steps, s.nar_steps) == (123, 7)
    assert downstream_settings(parse_args([]), tmp_path) is None


def test_prepare_refuses_another_codec_and_needs_the_data(tmp_path):
    data = tmp_path / "data"
    settings = D.DownstreamSettings(data_dir=str(data))
    model_a, model_b = tmp_path / "a" / "model", tmp_path / "b" / "model"
    for m in (model_a, model_b):
        m.mkdir(parents=True)
        (m / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="stages 0-2"):
        D.prepare(tmp_path / "v", model_a, settings)
    for sub in ("manifests", "phonemes"):
        (data / sub).mkdir(parents=True)
    D.prepare(tmp_path / "v", model_a, settings)
    D.prepare(tmp_path / "v", model_a, settings)              # idempotent
    assert not (tmp_path / "v" / "data" / "mini").exists()    # not linked when the source has none
    with pytest.raises(ValueError, match="another data dir or codec"):
        D.prepare(tmp_path / "v", model_b, settings)
    with pytest.raises(FileNotFoundError, match="no exported codec"):
        D.prepare(tmp_path / "w", tmp_path / "nowhere", settings)


@pytest.mark.parametrize("tiny", [False, True])
def test_part_overrides_resolve_in_the_tts_config(tiny):
    """What run.sh passes to tts.train: the replicate's seed and the step budget with the wall clock off."""
    from tts.train import load_tts_config
    settings = D.DownstreamSettings(data_dir="/d", ar_steps=11, nar_steps=5, tts_args=D.TINY_TTS if tiny else ())
    for part, steps in (("ar", 11), ("nar", 5)):
        cfg = load_tts_config([str(TTS_MINI)], settings.part_overrides(part, 2), part)
        assert cfg.train.max_steps == steps and cfg.train.max_minutes is None and cfg.train.seed == 2
        assert cfg.model.n_layers == (1 if tiny else 4)


def test_settings_key_ignores_nproc_and_budget_wins_over_args(tmp_path):
    a = D.DownstreamSettings(data_dir="/d", ar_args=("train.max_steps=99", "train.seed=5"), ar_steps=10)
    assert a.part_overrides("ar", 1)[-3:] == ["train.seed=1", "train.max_minutes=null", "train.max_steps=10"]
    assert D.DownstreamSettings(data_dir="/d", nproc=4).key() == D.DownstreamSettings(data_dir="/d").key()
    assert D.DownstreamSettings(data_dir="/d", nar_steps=3).key() != D.DownstreamSettings(data_dir="/d").key()
    with pytest.raises(ValueError, match="step budgets"):
        D.DownstreamSettings(data_dir="/d", ar_steps=0)
    assert os.path.basename(D.RUN_SH) == "run.sh"
    from experiments.ablation.plan import Plan
    (tmp_path / "m.jsonl").write_text("")
    plan = Plan(out=tmp_path, codec_conf=CONF, train_manifests=(str(tmp_path / "m.jsonl"),), steps=3, seeds=(0, 1))
    assert [d.key for d in D.downstream_runs(plan, variants=("ndvq", "rvq"))] == [
        "ndvq/seed0", "rvq/seed0", "ndvq/seed1", "rvq/seed1"]
    with pytest.raises(ValueError, match="not among"):
        D.downstream_runs(plan, (2,))


def test_archive_holds_the_numbers_without_machine_paths_and_resumes_a_new_out(setup, caplog):
    tmp, data, out, log = setup
    for s in (0, 1):
        _trained_codec(out, "ndvq", s, wer=0.4 + 0.1 * s)
        _trained_codec(out, "rvq", s, wer=0.2 + 0.1 * s)
    arch = tmp / "committed"
    main(_args(data, out, "--seeds", "0,1", "--downstream-only", "--downstream-seeds", "0", "--archive", str(arch)))
    assert len(_calls(log)) == 3                                    # the shared aligner + 2 runs
    kept = sorted(p.relative_to(arch).as_posix() for p in arch.rglob("*") if p.is_file())
    assert "downstream/rvq/seed0/result.json" in kept and "report.md" in kept
    # numbers and stage 8's report, the shared aligner's durations; no weights (codec, TTS or aligner)
    assert "downstream/aligner/data/durations/test-clean.meta.json" in kept
    assert not any(k.endswith(".safetensors") for k in kept)
    assert not any("/exp/" in k and not k.endswith("exp/eval/report.md") and not k.startswith("downstream/aligner/")
                   for k in kept)
    assert (arch / "downstream/ndvq/seed0/exp/eval/report.md").read_text() == \
        "PER: the recognizer of `downstream/ndvq/seed0/exp/aligner/model` (https://example.org/x)\n"
    for k in kept:
        if k.endswith((".json", ".jsonl", ".md")):
            assert str(tmp) not in (arch / k).read_text(), f"{k} names a machine path"

    # a new clone's --out, seeded from the archive: the archived runs are not run again; the seed-1 runs
    # added there train a shared aligner of their own (the archive holds no weights); the same numbers
    new = tmp / "new"
    for s in (0, 1):
        for v in ("ndvq", "rvq"):
            _trained_codec(new, v, s, wer=(0.4 if v == "ndvq" else 0.2) + 0.1 * s)
    with pytest.raises(SystemExit):
        main(_args(data, new, "--seeds", "0,1", "--downstream-only", "--from-archive", str(tmp / "nope")))
    caplog.set_level(logging.INFO, logger="experiments.ablation")
    main(_args(data, new, "--seeds", "0,1", "--downstream-only", "--from-archive", str(arch)))
    assert "restored 2 finished runs" in caplog.text                # the 2 TTS runs, not the aligner
    assert [_opt(c, "--exp-dir") for c in _calls(log)[3:]] == [str(new / "downstream" / d / "exp")
                                                               for d in ("aligner", "ndvq/seed1", "rvq/seed1")]
    assert (new / "downstream/rvq/seed1/exp/aligner").resolve() == (new / "downstream/aligner/exp/aligner").resolve()
    main(_args(data, out, "--seeds", "0,1", "--downstream-only"))   # the original out, completed in place
    before = json.loads((out / "report.json").read_text())["downstream_values"]
    assert json.loads((new / "report.json").read_text())["downstream_values"] == before
    # a run already started in --out is never overwritten by the archive
    caplog.clear()
    main(_args(data, new, "--seeds", "0,1", "--report-only", "--from-archive", str(arch)))
    assert "restored 0 finished runs" in caplog.text
    with pytest.raises(SystemExit):                                 # the archive cannot be --out itself
        main(_args(data, out, "--seeds", "0,1", "--report-only", "--archive", str(out)))
