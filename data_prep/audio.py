"""Audio utilities shared by the data preparation, the codec and the TTS.

Everything works on float32 numpy arrays in [-1, 1]; mono audio is ``[T]``. Reading uses
soundfile (WAV, FLAC, OGG, ... whatever libsndfile reads), resampling uses soxr ('HQ').
torch tensors are accepted where audio is *written* so training code can save directly.

Public names (imported by ``codec`` and ``tts``; keep them stable):
``AudioError, load_audio, save_audio, resample, rms, normalize_loudness, audio_info``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from core.io import atomic_path

log = logging.getLogger(__name__)

__all__ = ["AudioError", "load_audio", "save_audio", "resample", "rms", "normalize_loudness", "audio_info"]

_EPS = 1e-10


class AudioError(RuntimeError):
    """An audio file could not be used; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """Return ``(frames, sample_rate, channels)`` from the header only (cheap, no decoding).

    Raises :class:`AudioError` if the header cannot be read.
    """
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, OSError, ...
        raise AudioError(path, f"cannot read audio header ({type(e).__name__}: {e})") from e
    return int(info.frames), int(info.samplerate), int(info.channels)


def load_audio(
    path: str | os.PathLike, sample_rate: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Load an audio file as float32.

    Args:
        path: any file soundfile can read.
        sample_rate: resample (soxr 'HQ') to this rate if given; otherwise keep the file's rate.
        mono: average the channels into ``[T]``; with ``mono=False`` the result is ``[C, T]``.

    Returns:
        ``(wav, sr)`` where ``sr`` is the rate of the returned array.

    Raises:
        AudioError: the file is missing, unreadable, corrupt, empty or holds non-finite samples.
    """
    if not Path(path).is_file():
        raise AudioError(path, "file not found")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # [T, C]
    except Exception as e:
        raise AudioError(path, f"cannot decode audio ({type(e).__name__}: {e})") from e
    if data.size == 0:
        raise AudioError(path, "audio is empty (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    wav = data.mean(axis=1) if mono else data.T
    wav = np.ascontiguousarray(wav, dtype=np.float32)
    if sample_rate is not None and sample_rate != sr:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    return wav, int(sr)


def _to_numpy(wav: Any) -> np.ndarray:
    if hasattr(wav, "detach"):  # torch.Tensor, without importing torch here
        wav = wav.detach().cpu().float().numpy()
    return np.asarray(wav, dtype=np.float32)


def save_audio(
    path: str | os.PathLike, wav: Any, sample_rate: int, subtype: str = "PCM_16"
) -> None:
    """Write ``wav`` to ``path`` atomically (16-bit PCM WAV by default).

    ``wav`` is a numpy array or torch tensor of shape ``[T]``, ``[1, T]`` or ``[C, T]``; it is
    clipped to [-1, 1]. The container comes from the extension (``.wav``, ``.flac``, ...).
    """
    arr = _to_numpy(wav)
    if arr.ndim == 2:
        arr = arr[0] if arr.shape[0] == 1 else arr.T  # soundfile wants [T, C]
    elif arr.ndim != 1:
        raise ValueError(f"save_audio({path}): expected shape [T], [1, T] or [C, T], got {arr.shape}")
    arr = np.clip(np.nan_to_num(arr), -1.0, 1.0)
    fmt = Path(path).suffix.lstrip(".").upper() or "WAV"
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        sf.write(str(tmp), arr, int(sample_rate), subtype=subtype, format=fmt)


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``[T]`` or ``[C, T]`` float audio from ``sr_in`` to ``sr_out`` with soxr 'HQ'."""
    wav = np.asarray(wav, dtype=np.float32)
    if sr_in == sr_out:
        return wav
    if wav.ndim == 1:
        return soxr.resample(wav, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)
    out = soxr.resample(np.ascontiguousarray(wav.T), sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def rms(wav: np.ndarray) -> float:
    """Root-mean-square amplitude of ``wav`` (0.0 for an empty array)."""
    wav = np.asarray(wav, dtype=np.float64)
    return float(np.sqrt(np.mean(wav**2))) if wav.size else 0.0


def normalize_loudness(wav: np.ndarray, target_dbfs: float = -20.0, max_peak: float = 0.999) -> np.ndarray:
    """Scale ``wav`` so its RMS level is ``target_dbfs`` dB full scale.

    The gain is reduced if needed so the peak stays below ``max_peak`` (no clipping).
    Silent input is returned unchanged.
    """
    wav = np.asarray(wav, dtype=np.float32)
    level = rms(wav)
    if level < _EPS:
        return wav.copy()
    gain = 10.0 ** (target_dbfs / 20.0) / level
    peak = float(np.max(np.abs(wav))) * gain
    if peak > max_peak:
        gain *= max_peak / peak
    return (wav * gain).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    """``python -m data_prep.audio FILE...`` prints frames, rate, channels and duration of each file."""
    import argparse
    import sys

    p = argparse.ArgumentParser(description="Show audio file information (header only).")
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    status = 0
    for f in args.files:
        try:
            frames, sr, ch = audio_info(f)
            sys.stdout.write(f"{f}\tframes={frames}\tsr={sr}\tchannels={ch}\tduration={frames / sr:.3f}s\n")
        except AudioError as e:
            sys.stderr.write(f"{e}\n")
            status = 1
    raise SystemExit(status)


if __name__ == "__main__":
    main()
