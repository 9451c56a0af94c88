"""Pitch in codec.evaluate: the scores tell a voice's harmonics from a 50 Hz frame-rate buzz, every row
reports them, and the narrowband picture resolves harmonics."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from codec import evaluate as E
from codec.evaluation import pitch as P
from codec.evaluation import report as R
from tests.codec.helpers_inference import one_thread, tiny_codec  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
SR = 16000


def harmonic(f0: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 10))).astype(np.float32)


def pulses(rate: float = 50.0, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    """One decaying click per 1 / rate s: what a decoder whose frames add as one pulse per hop makes."""
    x = np.zeros(int(seconds * sr), np.float32)
    click = 0.5 * np.exp(-np.arange(80) / 10.0) * np.cos(2 * np.pi * 700 * np.arange(80) / sr)
    for start in range(0, len(x) - 80, int(sr / rate)):
        x[start:start + 80] += click
    return x


def test_pitch_scores_tell_a_voice_from_a_frame_rate_buzz():
    tone, buzz = harmonic(220.0), pulses(50.0)
    ref = P.tracks([tone], SR)
    same = P.row_pitch(ref, P.tracks([harmonic(220.0)], SR))
    assert same["cents_median"] < 5 and same["gpe"] == 0 and same["within_50"] == 1 and same["vde"] < 0.05
    off = P.row_pitch(ref, P.tracks([buzz], SR))
    assert off["voiced_both"] > 50 and off["cents_median"] == pytest.approx(1200 * np.log2(220 / 50), abs=60)
    assert off["gpe"] > 0.95 and off["within_50"] < 0.05
    assert P.female_male(ref + P.tracks([harmonic(110.0)], SR)) == (0, 1)
    with pytest.raises(ValueError, match="1 reference tracks but 2"):
        P.row_pitch(ref, ref + ref)


def test_narrowband_resolves_harmonics_and_the_buzz_comb():
    for wav, f in ((harmonic(220.0), 220.0), (pulses(50.0), 50.0)):
        db, secs = P.narrowband_db(wav, SR)
        assert secs == pytest.approx(1.0) and db.shape[0] == int(P.NARROW_MAX_HZ / (SR / P.NARROW_N_FFT)) + 1
        spectrum = db.mean(axis=1)
        hz = np.arange(db.shape[0]) * SR / P.NARROW_N_FFT
        on = [spectrum[int(round(k * f / (SR / P.NARROW_N_FFT)))] for k in range(1, 4)]
        between = [spectrum[int(round((k + 0.5) * f / (SR / P.NARROW_N_FFT)))] for k in range(1, 4)]
        assert min(on) > max(between) + 10, (f, on, between)     # lines at multiples of f, dips between
        assert hz[-1] <= P.NARROW_MAX_HZ


def test_every_row_reports_pitch_and_the_report_shows_it(tmp_path):
    codec = tiny_codec(seed=2)
    codec.save_pretrained(tmp_path / "model")
    rows = []
    for i, f0 in enumerate((110.0, 240.0)):                 # a low and a high voice
        p = tmp_path / f"u{i}.wav"
        wav = harmonic(f0, 0.8, codec.sample_rate)
        sf.write(p, wav, codec.sample_rate)
        rows.append({"id": f"u{i}", "path": str(p), "duration": 0.8, "sr": codec.sample_rate, "speaker": str(i),
                     "chapter": "1", "text_norm": "t", "text_orig": "T"})
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "res" / "eval"
    rep = E.evaluate([tmp_path / "model"], [str(tmp_path / "m.jsonl")], metrics=("mel",), jobs=1, out=out,
                     oracles=True)
    last = rep["checkpoints"][-1]["rows"]
    for r in last:
        assert set(P.PITCH_KEYS) <= set(r["pitch"]), r["kind"]
    gl = next(r for r in last if r["kind"] == "oracle_griffin_lim")["pitch"]
    assert gl["cents_median"] < 20 and gl["gpe"] < 0.05          # the true magnitude keeps the pitch
    md = (tmp_path / "res" / "eval.md").read_text()
    assert "F0 error (cents) ↓" in md and "GPE ↓" in md and "VDE ↓" in md and "Pitch: F0 tracks" in md
    assert rep["pitch_plot"] == R.PITCH_PLOT and (out / R.PITCH_PLOT).stat().st_size > 5000
    assert f"(eval/{R.PITCH_PLOT})" in md
    rep = E.evaluate([tmp_path / "model"], [str(tmp_path / "m.jsonl")], metrics=("mel",), jobs=1, plots=False,
                     pitch=False)
    assert all(r["pitch"] is None for r in rep["checkpoints"][-1]["rows"])


def test_validation_logs_pitch_per_bandwidth():
    """codec.valid.evaluate_codec: with the items' F0 tracks, each bandwidth's pooled pitch scores."""
    import torch

    from codec.valid import evaluate_codec
    from tests.codec.helpers_inference import tiny_model
    model = tiny_model(3)
    wav = harmonic(180.0, 0.6, model.config.sample_rate)
    items = [("a", torch.from_numpy(wav)[None, None])]
    bws = list(model.config.bandwidths)[:2]
    res, ex, pitch = evaluate_codec(model, items, bws, model.config.sample_rate,
                                    ref_f0=P.tracks([wav], model.config.sample_rate))
    assert set(res) == set(pitch) == set(bws)
    for p in pitch.values():
        assert set(P.PITCH_KEYS) <= set(p) and 0 <= p["vde"] <= 1
    assert evaluate_codec(model, items, bws, model.config.sample_rate)[2] == {}
