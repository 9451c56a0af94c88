"""egs/libritts/run.sh stages 7-8 on a tiny mini corpus with tiny random-weight codec/AR/NAR models:
the zero-shot list, its synthesis, and the evaluation report."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from core.io import read_jsonl

REPO = Path(__file__).resolve().parents[2]
RUN_SH = REPO / "egs" / "libritts" / "run.sh"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_run_sh_stages_7_and_8(tmp_path):
    from tests.tts.helpers_models import tiny_exp
    data, exp = tmp_path / "data", tmp_path / "exp"
    common = ["--mini-size", "tiny", "--nj", "2", "--data-dir", str(data), "--exp-dir", str(exp)]
    prep = subprocess.run(["bash", str(RUN_SH), "--stop-stage", "1", *common], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert prep.returncode == 0, prep.stderr[-3000:]
    tiny_exp(tmp_path)                       # exp/{codec,ar,nar}/model: random weights, no training
    cmd = ["bash", str(RUN_SH), "--stage", "7", "--stop-stage", "8", *common, "--zs-per-speaker", "1",
           "--synth-args", "--top-k 10", "--eval-args", "--no-dnsmos --examples 1"]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]

    items = read_jsonl(exp / "synth" / "list.jsonl")
    test_rows = {r["id"]: r for r in read_jsonl(data / "manifests" / "test-clean.jsonl")}
    train_speakers = {r["speaker"] for r in read_jsonl(data / "manifests" / "train-clean-100.jsonl")}
    assert len(items) == len({it["speaker"] for it in items}) >= 1          # one per speaker
    for it in items:
        assert it["speaker"] not in train_speakers                         # unseen speakers
        assert it["prompt_id"] != it["id"] and test_rows[it["prompt_id"]]["speaker"] == it["speaker"]
        assert Path(it["out_wav"]).is_file() and Path(it["prompt_wav"]).is_file()
    assert "--top-k 10" in (exp / "run.log").read_text()

    report = json.loads((exp / "eval" / "report.json").read_text())
    # the NAR row (the recording's codebook 1 + the NAR) isolates the NAR; no aligner here: no PER
    assert list(report["rows"]) == ["ground_truth", "resynthesis", "gt_cb1_nar", "tts"]
    assert all(r["n"] == len(items) for r in report["rows"].values())
    assert report["setting"]["n_q"] == 4                  # the NAR's n_q (the tiny models use all 4)
    assert set(report["targets"]) == {"wer", "sim", "duration", "pitch", "voice"}
    md = (exp / "eval" / "report.md").read_text()
    assert "| TTS (zero-shot) |" in md and "constrained" in md
    assert (exp / "eval" / "pitch_spectrograms.png").is_file()          # the narrowband pictures
    assert (exp / "eval" / "scores.png").is_file() and (exp / "eval" / "spectrograms.png").is_file()
    assert (exp / ".done.stage7.synth").is_file() and (exp / ".done.stage8.eval").is_file()

    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "stage 8 (eval): already done" in again.stderr
