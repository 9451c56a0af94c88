"""codec.evaluation.metrics: orderings that any sane metric must respect, invariances, missing packages, resampling."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import codec.evaluation.metrics as M

from tests.codec.helpers import tiny_wav

SR = 16_000


def speech_like(seconds: float = 2.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    # voiced bursts separated by pauses, so PESQ's voice activity detection finds utterances
    x = np.concatenate([tiny_wav(seed, seconds / 2, sr), np.zeros(int(0.2 * sr), np.float32),
                        tiny_wav(seed + 1, seconds / 2, sr)])
    return (x / np.abs(x).max() * 0.5).astype(np.float64)


def noisy(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(x.shape[0])
    n *= np.sqrt(np.mean(x ** 2) / np.mean(n ** 2) / 10 ** (snr_db / 10))
    return x + n


def need(metric: str):
    if not M.available_metrics()[metric]:
        pytest.skip(f"{metric} package not installed")


@pytest.fixture(scope="module")
def signals():
    ref = speech_like()
    return ref, noisy(ref, 20.0), noisy(ref, 0.0)


@pytest.mark.parametrize("metric", ["pesq", "stoi", "si_sdr", "mel"])
def test_identity_beats_light_noise_beats_heavy_noise(signals, metric):
    need(metric)
    ref, light, heavy = signals
    scores = [M.score_pair(ref, deg, SR, [metric])[metric] for deg in (ref, light, heavy)]
    if M.HIGHER_IS_BETTER[metric]:
        assert scores[0] > scores[1] > scores[2], scores
    else:
        assert scores[0] < scores[1] < scores[2], scores
    if metric == "mel":
        assert scores[0] == 0.0


def test_identity_values(signals):
    ref = signals[0]
    need("pesq"), need("stoi")
    assert M.pesq_wb(ref, ref, SR) > 4.5          # PESQ-WB's ceiling is 4.64
    assert M.stoi(ref, ref, SR) == pytest.approx(1.0, abs=1e-6)
    assert M.si_sdr(ref, ref) > 100.0


def test_si_sdr_scale_invariant_and_exact():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(8000)
    ref -= ref.mean()
    e = rng.standard_normal(8000)
    e -= e.mean()
    e -= ref * np.dot(e, ref) / np.dot(ref, ref)  # orthogonal to the reference
    deg = 0.7 * ref + e
    expected = 10 * np.log10(np.dot(0.7 * ref, 0.7 * ref) / np.dot(e, e))
    assert M.si_sdr(ref, deg) == pytest.approx(expected, abs=1e-9)
    for gain in (1e-3, 5.0, -2.0):
        assert M.si_sdr(ref, gain * deg) == pytest.approx(expected, abs=1e-9)
    # an added DC offset is ignored too (zero-mean first)
    assert M.si_sdr(ref, deg + 0.3) == pytest.approx(expected, abs=1e-9)


def test_missing_package_raises_and_is_reported_as_none(monkeypatch, signals):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pesq" else real(name, *a))
    ref, light, _ = signals
    assert M.available_metrics()["pesq"] is False
    with pytest.raises(M.MetricUnavailable, match="pesq"):
        M.pesq_wb(ref, light, SR)
    out = M.score_pair(ref, light, SR, ["pesq", "si_sdr"])
    assert out["pesq"] is None and isinstance(out["si_sdr"], float)


def test_missing_dnsmos_dependency_reports_every_key_as_none(monkeypatch, signals):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "librosa" else real(name, *a))
    ref, light, _ = signals
    with pytest.raises(M.MetricUnavailable, match="librosa"):
        M.dnsmos(light, SR)
    out = M.score_pair(ref, light, SR, ["dnsmos"])
    assert out == {f"dnsmos_{k}": None for k in M.DNSMOS_KEYS}


@pytest.mark.parametrize("metric", ["pesq", "stoi", "mel"])
def test_resampling_path_matches_native_rate(signals, metric):
    """The same pair given at 48 kHz scores like the 16 kHz original (the metric resamples inside)."""
    need(metric)
    ref, light, _ = signals
    up = [M.resample(x, SR, 48_000) for x in (ref, light)]
    native = M.score_pair(ref, light, SR, [metric])[metric]
    via = M.score_pair(*up, 48_000, [metric])[metric]
    assert via == pytest.approx(native, rel=0.05, abs=0.02)


def test_lengths_and_bad_input(signals):
    ref, light, _ = signals
    assert M.mel_distance(ref, np.concatenate([light, np.zeros(7)]), SR) == pytest.approx(
        M.mel_distance(ref, light, SR))
    with pytest.raises(ValueError, match="1-D"):
        M.si_sdr(np.zeros((2, 100)), np.zeros(100))
    with pytest.raises(ValueError, match="NaN"):
        M.si_sdr(ref, np.full_like(ref, np.nan))
    with pytest.raises(ValueError, match="constant"):
        M.si_sdr(np.zeros(100), np.ones(100))
    with pytest.raises(ValueError, match="unknown metric"):
        M.score_pair(ref, light, SR, ["pesq", "utmos"])


def test_mel_filterbank_matches_librosa_htk():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=M.MEL_SAMPLE_RATE, n_fft=M.MEL_N_FFT, n_mels=M.MEL_N_MELS, htk=True, norm=None)
    np.testing.assert_allclose(M._htk_mel_filterbank(M.MEL_SAMPLE_RATE, M.MEL_N_FFT, M.MEL_N_MELS), ref,
                               atol=1e-5)


@pytest.mark.slow
def test_visqol_orders_degradations(signals):
    need("visqol")
    ref, light, heavy = signals
    scores = [M.visqol(ref, deg, SR) for deg in (ref, light, heavy)]
    assert scores[0] > scores[1] > scores[2], scores
    assert all(1.0 <= s <= 5.0 for s in scores)


@pytest.mark.slow
def test_dnsmos_background_score_drops_with_noise(signals):
    need("dnsmos")
    ref, _, heavy = signals
    clean, dirty = M.dnsmos(ref, SR), M.dnsmos(heavy, SR)
    assert set(clean) == set(M.DNSMOS_KEYS)
    assert clean["bak"] > dirty["bak"]
    assert all(1.0 <= v <= 5.0 for v in clean.values())
