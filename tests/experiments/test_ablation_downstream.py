"""The ablation's downstream TTS mechanics (`--downstream` / `--downstream-only`), with a stub run.sh.

The stub stands in for egs/libritts/run.sh stages 4-8: it records its arguments, checks that the
directory it was given looks like a recipe data/exp pair with the variant's codec, and writes what
stage 8 would (exp/eval/report.json, sentinels). The real run.sh is exercised by tests/recipe/.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from data_prep.frontend import TextFrontend
from experiments.ablation import downstream as D
from experiments.ablation.__main__ import main
from experiments.ablation.plan import Run, mark_trained, variant

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "egs" / "libritts" / "conf" / "codec_mini.yaml"

# The stub: fails when STUB_FAIL is set (an interrupted variant); the WER of its TTS row is the
# variant's codec step (from the model's config.json) so rows can be told apart.
STUB = r'''#!/usr/bin/env bash
set -euo pipefail
{ printf "%q " "$@"; echo; } >> "$STUB_LOG"
while [ $# -gt 0 ]; do
  case "$1" in --data-dir) data="$2"; shift 2 ;; --exp-dir) exp="$2"; shift 2 ;; *) shift ;; esac
done
test -f "$data/manifests/train-clean-100.jsonl" && test -f "$data/.done.stage2.phonemes"
test -f "$exp/codec/model/config.json" && test -f "$exp/.done.stage3.codec"
mkdir -p "$data/codes/train-clean-100" "$exp/ar" "$exp/nar" "$exp/eval"
echo mini > "$data/.done.stage4.codes"
if [ -n "${STUB_FAIL:-}" ]; then exit 3; fi
wer=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['tag'])" "$exp/codec/model/config.json")
echo '{"step": 5, "minutes": 0.1, "stop_reason": "max_steps"}' > "$exp/ar/train_summary.json"
echo '{"step": 5, "loss": 4.0, "acc_k1": 0.125}' > "$exp/ar/valid.jsonl"
cat > "$exp/eval/report.json" <<EOF
{"rows": {"ground_truth": {"wer": 0.1, "sim": 0.9, "n": 4, "missing": 0},
          "resynthesis": {"wer": 0.2, "sim": 0.7, "n": 4, "missing": 0},
          "tts": {"wer": $wer, "sim": 0.6, "n": 4, "missing": 0}},
 "sim_floor": 0.5, "targets": {},
 "setting": {"n_items": 4, "n_speakers": 2, "n_q": 8, "asr": "stub-asr", "asr_constrained": true,
             "speaker_encoder": "stub-spk"}}
EOF
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


def _trained_codec(out: Path, name: str, seed: int = 0, steps: int = 3, tag: float = 0.5) -> Path:
    """A codec run as the ablation leaves it: the sentinel and an exported model directory."""
    run = out / "runs" / name / f"seed{seed}"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text(json.dumps({"tag": tag}))
    mark_trained(Run(variant(name), seed, run), steps)
    return run


def _args(tmp, data, out, *extra):
    return ["--tiny", "--codec-conf", str(CONF), "--out", str(out), "--data-dir", str(data), "--steps", "3",
            "--no-plots", *extra]


def _calls(log: Path) -> list[list[str]]:
    return [shlex.split(ln) for ln in log.read_text().splitlines()] if log.is_file() else []


def _opt(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def test_downstream_only_builds_dirs_runs_the_recipe_and_reports(setup):
    tmp, data, out, log = setup
    _trained_codec(out, "ndvq", tag=0.75)
    _trained_codec(out, "rvq", tag=0.25)
    _trained_codec(out, "ndvq_sample_weight", steps=2)        # short of the budget: no downstream yet
    main(_args(tmp, data, out, "--downstream-only", "--ar-steps", "7", "--nar-steps", "4"))

    calls = _calls(log)
    assert len(calls) == 2                                    # ndvq and rvq only
    for call, v in zip(calls, ("ndvq", "rvq")):
        vdir = out / "downstream" / v
        assert _opt(call, "--data-dir") == str(vdir / "data") and _opt(call, "--exp-dir") == str(vdir / "exp")
        assert (_opt(call, "--stage"), _opt(call, "--stop-stage")) == ("4", "8")
        # the budget is steps, minutes off, after the tiny TTS overrides (so it wins)
        ar = _opt(call, "--ar-args").split()
        assert ar[-2:] == ["train.max_minutes=null", "train.max_steps=7"] and "model.n_layers=1" in ar
        assert _opt(call, "--nar-args").split()[-1] == "train.max_steps=4"
        assert _opt(call, "--zs-per-speaker") == "1" and "--no-dnsmos" in _opt(call, "--eval-args")
        # shared pieces are symlinks to the recipe's data; the codec is the variant's seed-0 model
        for sub in ("manifests", "phonemes", "mini"):
            assert (vdir / "data" / sub).is_symlink() and (vdir / "data" / sub).resolve() == (data / sub).resolve()
        model = vdir / "exp" / "codec" / "model"
        assert model.is_symlink() and model.resolve() == (out / "runs" / v / "seed0" / "model").resolve()
        assert (vdir / "data" / ".done.stage2.phonemes").read_text().strip() == "mini"
        assert (vdir / "exp" / ".done.stage3.codec").read_text().strip() == "mini"
        res = json.loads((vdir / "result.json").read_text())
        assert res["codec_run"] == f"{v}/seed0" and res["codec_step"] == 3
        assert res["tts"]["ar"]["step"] == 5 and res["tts"]["ar"]["valid_top1"] == {"acc_k1": 0.125}
    assert json.loads((out / "downstream" / "ndvq" / "result.json").read_text())["rows"]["tts"]["wer"] == 0.75
    assert not (out / "downstream" / "ndvq_sample_weight").exists()
    # the real run.sh accepts every option the stub got (from stage 9: options parsed, no stage run)
    args = [a if i == 0 or calls[0][i - 1] != "--stage" else "9" for i, a in enumerate(calls[0])]
    done = subprocess.run(["bash", str(REPO / "egs" / "libritts" / "run.sh"), *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stages=9..8" in done.stderr
    assert not (out / "eval_items.jsonl").exists()            # --downstream-only evaluates no codec

    md = (out / "report.md").read_text()
    assert "## Downstream TTS" in md and "AR 7 + NAR 4 steps" in md
    assert "| ndvq | done | 0.750 | 0.600 | 0.200 | 0.700 | 0.125 | AR 7 + NAR 4 steps |" in md
    assert "| rvq | done | 0.250 |" in md
    assert "| ndvq_sample_weight | no_codec | missing |" in md and "| ndvq_authors | no_codec | missing |" in md
    assert "| ground truth (recordings) | - | 0.100 | 0.900" in md and "| SIM floor" in md and "0.500" in md
    verdict = md.split("## Verdict")[1]
    assert "**Downstream TTS**" in verdict and "ndvq WER +0.500, SIM +0.000" in verdict   # vs rvq
    assert "one codec seed" in verdict and "Not finished: ndvq_authors, ndvq_sample_weight" in verdict
    rep = json.loads((out / "report.json").read_text())
    assert {r["variant"]: r["status"] for r in rep["downstream"]}["rvq"] == "done"

    # again: both are skipped, run.sh is not called
    main(_args(tmp, data, out, "--downstream-only", "--ar-steps", "7", "--nar-steps", "4"))
    assert len(_calls(log)) == 2
    # a deleted result.json is collected again from the finished stage 8, without running run.sh
    (out / "downstream" / "rvq" / "result.json").unlink()
    main(_args(tmp, data, out, "--downstream-only", "--ar-steps", "7", "--nar-steps", "4"))
    assert len(_calls(log)) == 2 and (out / "downstream" / "rvq" / "result.json").is_file()
    # another budget on a started directory is an error, not a silent mix
    with pytest.raises(ValueError, match="other settings"):
        main(_args(tmp, data, out, "--downstream-only", "--ar-steps", "9", "--nar-steps", "4", "--runs", "rvq"))
    # --report-only without --downstream still shows what exists, each row with its own budget
    main(_args(tmp, data, out, "--report-only"))
    assert "| rvq | done | 0.250 |" in (out / "report.md").read_text()


def test_interrupted_variant_resumes_and_stop_after_and_runs_are_respected(setup, monkeypatch):
    tmp, data, out, log = setup
    for v in ("ndvq", "rvq"):
        _trained_codec(out, v)
    main(_args(tmp, data, out, "--downstream-only", "--stop-after", "0"))
    assert _calls(log) == []
    assert "| rvq | missing | missing |" in (out / "report.md").read_text()

    monkeypatch.setenv("STUB_FAIL", "1")
    with pytest.raises(RuntimeError, match="run the ablation again to resume"):
        main(_args(tmp, data, out, "--downstream-only", "--runs", "rvq"))
    vdir = out / "downstream" / "rvq"
    assert (vdir / "downstream_run.json").is_file() and not (vdir / "result.json").exists()
    monkeypatch.delenv("STUB_FAIL")
    main(_args(tmp, data, out, "--downstream-only", "--runs", "rvq"))
    calls = _calls(log)
    assert len(calls) == 2 and all(_opt(c, "--exp-dir") == str(vdir / "exp") for c in calls)
    # the second invocation ran in the same directory (run.sh's sentinels carry the resume)
    assert (vdir / "data" / ".done.stage4.codes").is_file() and (vdir / "result.json").is_file()
    md = (out / "report.md").read_text()
    assert "| rvq | done |" in md and "| ndvq | partial |" not in md and "| ndvq | missing |" in md


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
    """What run.sh passes to tts.train: the step budget with the wall clock off, over the mini config."""
    from tts.train import load_tts_config
    settings = D.DownstreamSettings(data_dir="/d", ar_steps=11, nar_steps=5, tts_args=D.TINY_TTS if tiny else ())
    conf = str(REPO / "egs" / "libritts" / "conf" / "tts_mini.yaml")
    for part, steps in (("ar", 11), ("nar", 5)):
        cfg = load_tts_config([conf], settings.part_overrides(part), part)
        assert cfg.train.max_steps == steps and cfg.train.max_minutes is None
        assert cfg.model.n_layers == (1 if tiny else 4)


def test_settings_key_ignores_nproc_and_budget_wins_over_args():
    a = D.DownstreamSettings(data_dir="/d", ar_args=("train.max_steps=99",), ar_steps=10)
    assert a.part_overrides("ar")[-1] == "train.max_steps=10"
    assert D.DownstreamSettings(data_dir="/d", nproc=4).key() == D.DownstreamSettings(data_dir="/d").key()
    assert D.DownstreamSettings(data_dir="/d", nar_steps=3).key() != D.DownstreamSettings(data_dir="/d").key()
    with pytest.raises(ValueError, match="step budgets"):
        D.DownstreamSettings(data_dir="/d", ar_steps=0)
    assert os.path.basename(D.RUN_SH) == "run.sh"
