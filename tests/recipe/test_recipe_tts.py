"""egs/libritts/run.sh stages 5-6 (AR, NAR) on a small synthetic code dump (no codec training needed)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN_SH = REPO / "egs" / "libritts" / "run.sh"
sys.path.insert(0, str(REPO / "tests" / "tts"))
from tts_dump_fixtures import write_dump  # noqa: E402

TINY = ("model.n_layers=1 model.d_model=32 model.n_heads=2 model.ffn_mult=2 model.n_q=4 "
        "data.min_seconds=0.3 data.max_frames_per_batch=300 data.ar_context_seconds=0.5 data.num_workers=0 "
        "data.prompt_min_seconds=0.1 data.prompt_max_seconds=0.4 train.valid_every=2 train.ckpt_every=2")


def _run(data, exp, *extra):
    cmd = ["bash", str(RUN_SH), "--stage", "5", "--stop-stage", "6", "--data-dir", str(data),
           "--exp-dir", str(exp), *extra]
    return subprocess.run(cmd, cwd=data.parent, capture_output=True, text=True, timeout=600)


def _steps(path: Path) -> list[int]:
    return [json.loads(ln)["step"] for ln in path.read_text().splitlines() if ln.strip()]


@pytest.mark.slow
def test_run_sh_trains_ar_and_nar_and_resumes(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    write_dump(data, n_speakers=3, per_speaker=5, subset="train-clean-100")
    write_dump(data, n_speakers=2, per_speaker=3, subset="dev-clean", seed=1)
    first = _run(data, exp, "--ar-args", f"{TINY} train.max_steps=3", "--nar-args", f"{TINY} train.max_steps=2")
    assert first.returncode == 0, first.stderr[-4000:]
    log = (exp / "run.log").read_text()
    assert "accelerate launch" in log and "tts.train --part ar" in log and "tts.train --part nar" in log
    for part, steps in (("ar", 3), ("nar", 2)):
        d = exp / part
        assert (d / "model" / "model.safetensors").is_file() and (d / "model" / "config.json").is_file()
        assert json.loads((d / "train_summary.json").read_text())["step"] == steps
        assert _steps(d / "valid.jsonl")[-1] == steps and list((d / "tb").rglob("events.out.tfevents*"))
        assert (exp / f".done.stage{5 if part == 'ar' else 6}.{part}").is_file()
        meta = json.loads((d / "model" / "config.json").read_text())
        assert meta["part"] == part and meta["codec_sha256"] == "a" * 64
    # the mini AR trains on the dump's forced-alignment durations and reports whether it reads the text
    assert json.loads((exp / "ar" / "model" / "config.json").read_text())["model"]["ar_alignment"] == "durations"
    last = json.loads((exp / "ar" / "valid.jsonl").read_text().splitlines()[-1])
    assert "text_gain_nats" in last and "dur_mse" in last
    assert (exp / "ar" / "baselines.json").is_file() and (exp / "ar" / "attention.png").is_file()
    # so does the mini NAR (each frame gets its phoneme), and its validation says whether it reads the text
    assert json.loads((exp / "nar" / "model" / "config.json").read_text())["model"]["nar_alignment"] == "durations"
    assert "text_gain_nats" in json.loads((exp / "nar" / "valid.jsonl").read_text().splitlines()[-1])

    again = _run(data, exp)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "stage 5 (ar): already done" in again.stderr and "stage 6 (nar): already done" in again.stderr
    assert "tts.train" not in again.stderr

    # a longer budget: the AR resumes from the finished run's step-3 checkpoint and continues to 5
    # (losses.jsonl holds each step once)
    more = _run(data, exp, "--force", "--stop-stage", "5", "--ar-args", f"{TINY} train.max_steps=5")
    assert more.returncode == 0, more.stderr[-3000:]
    assert "resuming from" in more.stderr
    assert _steps(exp / "ar" / "losses.jsonl") == [0, 1, 2, 3, 4]
