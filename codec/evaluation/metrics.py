"""Audio quality metrics, one implementation for the whole project (codec and TTS evaluation).

    from codec.metrics import score_pair, available_metrics
    score_pair(ref, deg, sr=24000, metrics=("pesq", "stoi", "si_sdr", "mel"))
    # {"pesq": 1.31, "stoi": 0.81, "si_sdr": 4.2, "mel": 0.52}; a metric whose package is missing -> None

Every function takes 1-D float numpy arrays (reference first, degraded second) and resamples
internally where the metric is defined at a fixed rate:

| name     | what                                                   | rate         | package          |
|----------|--------------------------------------------------------|--------------|------------------|
| pesq     | PESQ wide band (ITU-T P.862.2), MOS-LQO 1.04-4.64      | 16 kHz       | pesq             |
| stoi     | short-time objective intelligibility, 0-1              | 16 kHz [1]   | pystoi           |
| si_sdr   | scale-invariant SDR in dB (zero-mean signals)          | as given     | (numpy)          |
| mel      | mean L1 between log10 80-bin mel spectrograms          | 24 kHz       | (torch)          |
| visqol   | ViSQOL v3 speech mode, MOS-LQO (lattice mapping)       | 16 kHz       | visqol-python    |
| dnsmos   | DNSMOS P.835 (ovrl, sig, bak) + P.808; no reference    | 16 kHz       | speechmos [2]    |

[1] pystoi resamples to its own 10 kHz internally; we hand it 16 kHz like every other 16 kHz metric.
[2] speechmos imports onnxruntime and librosa without declaring them; the `eval` extra lists both.

Lengths: reference and degraded are cut to the shorter of the two (a codec returns the input's length;
a few samples of difference are edge effects, not content). A metric whose package is not installed
raises `MetricUnavailable`; `score_pair` reports it as None ("missing"), never as a number. PESQ
returns NaN (with a warning) when it finds no utterance in the reference.

The mel distance is pinned here (HTK filterbank without normalisation, magnitude, n_fft 1024, hop 256,
80 bins, log10 with a 1e-5 floor, at 24 kHz) rather than imported from the training loss: it is the
number codec.evaluate has reported since the start, and it must not move when the training loss's
spectrogram changes.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import math
from typing import Literal, Sequence, get_args

import numpy as np

logger = logging.getLogger(__name__)

Metric = Literal["pesq", "stoi", "si_sdr", "mel", "visqol", "dnsmos"]
METRICS: tuple[str, ...] = get_args(Metric)
DEFAULT_METRICS: tuple[str, ...] = ("pesq", "stoi", "si_sdr", "mel")
HIGHER_IS_BETTER = {"pesq": True, "stoi": True, "si_sdr": True, "mel": False, "visqol": True,
                    "dnsmos_ovrl": True, "dnsmos_sig": True, "dnsmos_bak": True, "dnsmos_p808": True}
METRIC_SAMPLE_RATE = 16_000          # PESQ-WB, STOI, ViSQOL speech, DNSMOS
MEL_SAMPLE_RATE = 24_000
MEL_N_FFT, MEL_HOP, MEL_N_MELS, MEL_FLOOR = 1024, 256, 80, 1e-5
DNSMOS_KEYS = ("ovrl", "sig", "bak", "p808")

# the packages each optional metric needs (import names)
_REQUIRES: dict[str, tuple[str, ...]] = {
    "pesq": ("pesq",), "stoi": ("pystoi",), "si_sdr": (), "mel": ("torch",),
    "visqol": ("visqol",), "dnsmos": ("speechmos", "onnxruntime", "librosa"),
}
_PIP_NAMES = {"pesq": "pesq", "pystoi": "pystoi", "visqol": "visqol-python[lattice]", "speechmos": "speechmos",
              "onnxruntime": "onnxruntime", "librosa": "librosa", "torch": "torch"}


class MetricUnavailable(RuntimeError):
    """A metric's package is not installed (reported as "missing", never as a number)."""


# ------------------------------------------------------------------------------------- helpers
def available_metrics() -> dict[str, bool]:
    """{metric: installed?} without importing the (slow) packages."""
    return {m: all(importlib.util.find_spec(p) is not None for p in _REQUIRES[m]) for m in METRICS}


def _require(metric: str) -> None:
    missing = [p for p in _REQUIRES[metric] if importlib.util.find_spec(p) is None]
    if missing:
        pkgs = " ".join(_PIP_NAMES.get(p, p) for p in missing)
        raise MetricUnavailable(f"{metric}: package(s) not installed: {', '.join(missing)} "
                                f"(pip install '{pkgs}', or the project's `eval` extra)")


def _as_1d(x, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D waveform, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: empty waveform")
    a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: waveform contains NaN or infinite samples")
    return a


def _pair(ref, deg) -> tuple[np.ndarray, np.ndarray]:
    r, d = _as_1d(ref, "ref"), _as_1d(deg, "deg")
    n = min(r.shape[0], d.shape[0])
    return r[:n], d[:n]


def resample(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    """1-D float64 audio from `sr` to `target` (soxr HQ, deterministic); unchanged if equal."""
    if int(sr) <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    if int(sr) == int(target):
        return x
    import soxr
    return soxr.resample(np.ascontiguousarray(x, dtype=np.float64), int(sr), int(target), quality="HQ")


# ------------------------------------------------------------------------------------- metrics
def si_sdr(ref, deg) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), both signals made zero-mean first."""
    r, d = _pair(ref, deg)
    r, d = r - r.mean(), d - d.mean()
    rr = float(np.dot(r, r))
    if rr <= 0.0:
        raise ValueError("si_sdr: the reference is constant (no energy)")
    target = (np.dot(d, r) / rr) * r
    noise = d - target
    tt, nn_ = float(np.dot(target, target)), float(np.dot(noise, noise))
    eps = np.finfo(np.float64).tiny       # identical signals: a very large finite number, not inf
    return float(10.0 * (math.log10(max(tt, eps)) - math.log10(max(nn_, eps))))


def pesq_wb(ref, deg, sr: int) -> float:
    """PESQ wide band at 16 kHz (MOS-LQO); NaN if PESQ finds no utterance in the reference."""
    _require("pesq")
    r, d = _pair(ref, deg)
    return _pesq16(resample(r, sr, METRIC_SAMPLE_RATE), resample(d, sr, METRIC_SAMPLE_RATE))


def _pesq16(r: np.ndarray, d: np.ndarray) -> float:
    from pesq import PesqError, pesq
    try:
        return float(pesq(METRIC_SAMPLE_RATE, r, d, "wb"))
    except PesqError as e:            # e.g. NoUtterancesError on near-silent references
        logger.warning("pesq: %s: %s (reported as NaN)", type(e).__name__, e)
        return float("nan")


def stoi(ref, deg, sr: int) -> float:
    """STOI (classic, not extended) computed from 16 kHz signals."""
    _require("stoi")
    r, d = _pair(ref, deg)
    return _stoi16(resample(r, sr, METRIC_SAMPLE_RATE), resample(d, sr, METRIC_SAMPLE_RATE))


def _stoi16(r: np.ndarray, d: np.ndarray) -> float:
    from pystoi import stoi as _stoi
    return float(_stoi(r, d, METRIC_SAMPLE_RATE, extended=False))


@functools.lru_cache(maxsize=4)
def _htk_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular HTK mel filters [n_mels, n_fft // 2 + 1], unnormalised, 0 Hz to Nyquist."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    hz = 700.0 * (10.0 ** (np.linspace(0.0, hz_to_mel(sample_rate / 2), n_mels + 2) / 2595.0) - 1.0)
    lower, center, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lower) / (center - lower)
    down = (upper - freqs[None]) / (upper - center)
    return np.clip(np.minimum(up, down), 0.0, None).astype(np.float32)


def log_mel_spectrogram(x, sr: int) -> np.ndarray:
    """The metric's log10 mel spectrogram [80, frames] of 1-D audio (resampled to 24 kHz)."""
    import torch
    a = resample(_as_1d(x, "wav"), sr, MEL_SAMPLE_RATE)
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    pad = MEL_N_FFT // 2
    if t.shape[0] <= pad:             # reflect padding needs more samples than the pad
        t = torch.nn.functional.pad(t, (0, pad + 1 - t.shape[0]))
    spec = torch.stft(t, MEL_N_FFT, MEL_HOP, window=torch.hann_window(MEL_N_FFT), center=True,
                      pad_mode="reflect", return_complex=True).abs()
    fb = torch.from_numpy(_htk_mel_filterbank(MEL_SAMPLE_RATE, MEL_N_FFT, MEL_N_MELS))
    return torch.log10((fb @ spec).clamp_min(MEL_FLOOR)).numpy()


def mel_distance(ref, deg, sr: int) -> float:
    """Mean L1 between log10 80-bin mel spectrograms at 24 kHz (lower is better)."""
    r, d = _pair(ref, deg)
    return float(np.mean(np.abs(log_mel_spectrogram(d, sr) - log_mel_spectrogram(r, sr))))


@functools.lru_cache(maxsize=1)
def _visqol_api():
    from visqol import VisqolApi
    from visqol.visqol_manager import has_lattice_runtime
    lattice = bool(has_lattice_runtime())
    if not lattice:
        logger.warning("visqol: ai-edge-litert missing, speech MOS uses the polynomial mapping "
                       "(not comparable with the lattice mapping of visqol-python[lattice])")
    api = VisqolApi()
    api.create(mode="speech", use_lattice_model=lattice)
    return api


def visqol(ref, deg, sr: int) -> float:
    """ViSQOL v3 speech mode MOS-LQO at 16 kHz (the first call builds the model, a few seconds)."""
    _require("visqol")
    r, d = _pair(ref, deg)
    return _visqol16(resample(r, sr, METRIC_SAMPLE_RATE), resample(d, sr, METRIC_SAMPLE_RATE))


def _visqol16(r: np.ndarray, d: np.ndarray) -> float:
    return float(_visqol_api().measure_from_arrays(r, d, METRIC_SAMPLE_RATE).moslqo)


def dnsmos(wav, sr: int) -> dict[str, float]:
    """DNSMOS of one signal (no reference): {"ovrl", "sig", "bak", "p808"} MOS at 16 kHz.

    The input is clipped to [-1, 1] (speechmos refuses anything else). Costly: each 9 s window
    (hop 1 s; shorter clips are repeated to 9 s) runs two ONNX networks; the first call also loads them.
    """
    _require("dnsmos")
    return _dnsmos16(resample(_as_1d(wav, "wav"), sr, METRIC_SAMPLE_RATE))


def _dnsmos16(w: np.ndarray) -> dict[str, float]:
    from speechmos import dnsmos as _dns
    out = _dns.run(np.clip(w, -1.0, 1.0).astype(np.float32), sr=METRIC_SAMPLE_RATE)
    return {k: float(out[f"{k}_mos"]) for k in DNSMOS_KEYS}


# ------------------------------------------------------------------------------------- together
def score_keys(metrics: Sequence[str]) -> list[str]:
    """The result keys `score_pair` returns for `metrics` (dnsmos expands to dnsmos_ovrl, ...)."""
    keys: list[str] = []
    for m in metrics:
        keys += [f"dnsmos_{k}" for k in DNSMOS_KEYS] if m == "dnsmos" else [m]
    return keys


def check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown} (expected some of {METRICS})")
    return tuple(dict.fromkeys(metrics))


def score_pair(ref, deg, sr: int, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float | None]:
    """Every metric in `metrics` for one (reference, degraded) pair; None where a package is missing.

    Resamples once to 16 kHz for the 16 kHz metrics. "dnsmos" scores the degraded signal only and
    gives the keys dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808.
    """
    metrics = check_metrics(metrics)
    r, d = _pair(ref, deg)
    out: dict[str, float | None] = {}
    r16 = d16 = None
    for m in metrics:
        try:
            _require(m)
            if m in ("pesq", "stoi", "visqol", "dnsmos") and r16 is None:
                r16, d16 = resample(r, sr, METRIC_SAMPLE_RATE), resample(d, sr, METRIC_SAMPLE_RATE)
            if m == "pesq":
                out[m] = _pesq16(r16, d16)
            elif m == "stoi":
                out[m] = _stoi16(r16, d16)
            elif m == "si_sdr":
                out[m] = si_sdr(r, d)
            elif m == "mel":
                out[m] = mel_distance(r, d, sr)
            elif m == "visqol":
                out[m] = _visqol16(r16, d16)
            elif m == "dnsmos":
                out.update({f"dnsmos_{k}": v for k, v in _dnsmos16(d16).items()})
        except MetricUnavailable as e:
            logger.debug("%s", e)
            out.update({k: None for k in score_keys([m])})
    return out


def package_versions() -> dict[str, str | None]:
    """Installed versions of the metric packages (recorded next to the scores)."""
    from importlib.metadata import PackageNotFoundError, version
    out: dict[str, str | None] = {}
    for dist in ("pesq", "pystoi", "visqol-python", "ai-edge-litert", "speechmos", "onnxruntime", "librosa"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


__all__ = ["MetricUnavailable", "Metric", "METRICS", "DEFAULT_METRICS", "HIGHER_IS_BETTER", "available_metrics",
           "pesq_wb", "stoi", "si_sdr", "mel_distance", "log_mel_spectrogram", "visqol", "dnsmos", "score_pair",
           "score_keys", "check_metrics", "package_versions", "resample"]
