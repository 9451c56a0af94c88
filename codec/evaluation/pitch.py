"""Pitch in the codec's evaluation: F0 tracks of reference and output, their pooled scores, and the
narrowband spectrograms where harmonics are visible.

The tracker and the scores are data_prep.pitch's (Praat's autocorrelation method, 10 ms frames, floor
40 Hz so that a 50 Hz frame-rate buzz is measured as 50 Hz, not called unvoiced). A row's pitch is
pooled over its utterances: every frame counts once (`pooled_scores`), so long utterances weigh more,
as in the vocoder papers. Tracking costs about 10 ms per second of audio.

Narrowband spectrogram: |STFT| in dB at 16 kHz, n_fft 2048 (128 ms: 7.8 Hz bins, enough to resolve
the harmonics of a 80 Hz voice), hop 10 ms, 0-1.5 kHz, 60 dB range below the panel's peak. A voice
shows lines at F0, 2 F0, 3 F0 ...; a frame-rate buzz shows a dense comb at multiples of the frame rate.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from data_prep.pitch import median_f0, pooled_scores, track_f0

PITCH_KEYS = ("cents_median", "within_50", "gpe", "vde")
PITCH_TITLES = {"cents_median": "F0 error (cents)", "within_50": "F0 within 50 c", "gpe": "GPE", "vde": "VDE"}
PITCH_HIGHER_IS_BETTER = {"cents_median": False, "within_50": True, "gpe": False, "vde": False}
NARROW_SR, NARROW_N_FFT, NARROW_HOP, NARROW_MAX_HZ, NARROW_RANGE_DB = 16_000, 2048, 160, 1500.0, 60.0


def tracks(wavs: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
    """F0 track (Hz, 0 = unvoiced, 10 ms frames) of each mono waveform [T]."""
    return [track_f0(w, sample_rate) for w in wavs]


def row_pitch(ref_tracks: Sequence[np.ndarray], out_tracks: Sequence[np.ndarray]) -> dict:
    """Pooled scores of the outputs against the references (same order): cents_median, within_50, gpe,
    vde, voiced_both (frames voiced in both). NaN where no frame is voiced in both."""
    if len(ref_tracks) != len(out_tracks):
        raise ValueError(f"row_pitch: {len(ref_tracks)} reference tracks but {len(out_tracks)} output tracks")
    return pooled_scores(list(zip(out_tracks, ref_tracks))).as_dict()


def female_male(ref_tracks: Sequence[np.ndarray]) -> tuple[int, int]:
    """Indices of the references with the highest and the lowest median F0 (a female and a male voice on a
    corpus with both); utterances without voiced frames are skipped (0, 0 when none has any)."""
    med = np.array([median_f0(t) for t in ref_tracks], dtype=np.float64)
    if not np.isfinite(med).any():
        return 0, 0
    return int(np.nanargmax(med)), int(np.nanargmin(med))


def narrowband_db(wav: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """(dB magnitude [F, frames] from 0 to NARROW_MAX_HZ, seconds) of mono `wav` [T], resampled to 16 kHz."""
    import torch

    from codec.evaluation.metrics import resample
    x = resample(np.asarray(wav, np.float64).reshape(-1), sample_rate, NARROW_SR)
    seconds = len(x) / NARROW_SR
    if len(x) <= NARROW_N_FFT // 2:
        x = np.pad(x, (0, NARROW_N_FFT // 2 + 1 - len(x)))
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    spec = torch.stft(t, NARROW_N_FFT, NARROW_HOP, window=torch.hann_window(NARROW_N_FFT), center=True,
                      return_complex=True).abs().numpy()
    bins = int(math.floor(NARROW_MAX_HZ / (NARROW_SR / NARROW_N_FFT))) + 1
    return 20.0 * np.log10(spec[:bins] + 1e-8), seconds


def plot_narrowband(path: Path, columns: Sequence[tuple[str, Sequence[tuple[str, Optional[np.ndarray], int]]]],
                    f0: Optional[dict] = None) -> None:
    """One column per voice (title, panels), one panel per (label, wav [T] or None, sample rate), all on
    one seconds axis per column; `f0`: {(column, row): track} drawn over the panel (10 ms frames).
    Written atomically as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import atomic_path
    n_rows = max(len(p) for _, p in columns)
    fig, axes = plt.subplots(n_rows, len(columns), figsize=(6.2 * len(columns), 2.1 * n_rows), squeeze=False)
    for c, (title, panels) in enumerate(columns):
        spans = [len(w) / sr for _, w, sr in panels if w is not None]
        span = max(spans) if spans else 1.0
        for r in range(n_rows):
            ax = axes[r, c]
            if r >= len(panels) or panels[r][1] is None:
                ax.axis("off")
                continue
            label, wav, sr = panels[r]
            db, secs = narrowband_db(wav, sr)
            ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - NARROW_RANGE_DB,
                      vmax=db.max(), extent=(0, secs, 0, NARROW_MAX_HZ))
            tr = (f0 or {}).get((c, r))
            if tr is not None and np.any(tr > 0):
                t = np.arange(len(tr)) * 0.01
                ax.plot(t, np.where(tr > 0, tr, np.nan), color="cyan", lw=0.7, alpha=0.8)
            ax.set_facecolor("black")             # beyond a shorter panel's end: silence, not white
            ax.set_xlim(0, span)
            ax.set_ylim(0, NARROW_MAX_HZ)
            med = median_f0(tr) if tr is not None else math.nan
            ax.set_title(f"{title}: {label}" + (f" (median F0 {med:.0f} Hz)" if math.isfinite(med) else ""),
                         fontsize=8)
            ax.set_ylabel("Hz", fontsize=7)
            ax.tick_params(labelsize=6)
        axes[-1, c].set_xlabel("seconds", fontsize=7)
    fig.suptitle(f"narrowband spectrograms (n_fft {NARROW_N_FFT} at {NARROW_SR // 1000} kHz, 0-{NARROW_MAX_HZ:g} Hz; "
                 "cyan: tracked F0)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def fmt_pitch(p: Optional[dict]) -> list[str]:
    """Table cells of a row's pitch (PITCH_KEYS order); "n/a" where not measured."""
    if not p:
        return ["n/a"] * len(PITCH_KEYS)
    cells = []
    for k in PITCH_KEYS:
        v = p.get(k)
        if v is None or not math.isfinite(v):
            cells.append("n/a")
        else:
            cells.append(f"{v:.0f}" if k == "cents_median" and v >= 100 else f"{v:.1f}" if k == "cents_median"
                         else f"{v:.3f}")
    return cells
