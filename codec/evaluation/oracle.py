"""Ceiling rows for the codec evaluation: audio rebuilt from the reference's own STFT magnitude.

A decoder that got every magnitude right still has to invent the phase. These rows show what that
costs on the same utterances, at the frame grid of the iSTFT head (hop = the codec's hop, n_fft =
4 x hop): with a random phase (what a magnitude-perfect decoder with incoherent phase scores) and with
Griffin-Lim's phase (a consistent phase found from the magnitude alone). Read a codec's score between
its floor (the no-information row) and these ceilings: on the mini corpus the random-phase row is
close to the 15-minute codec, the Griffin-Lim row far above it (README.md).
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

OraclePhase = Literal["random", "griffin_lim"]


@torch.no_grad()
def oracle_magnitude(wav: np.ndarray, hop: int, phase: OraclePhase, n_fft: int | None = None,
                     iters: int = 32, seed: int = 0) -> np.ndarray:
    """wav [T] -> [T]: |STFT(wav)| (Hann, n_fft = 4 * hop unless given) with a phase from `phase`.

    random       uniform phases drawn from `seed` (the same draw every call)
    griffin_lim  `iters` Griffin-Lim iterations started from that random phase
    """
    if wav.ndim != 1:
        raise ValueError(f"oracle_magnitude: expected a mono [T] waveform, got shape {wav.shape}")
    if phase not in ("random", "griffin_lim"):
        raise ValueError(f"oracle_magnitude: phase={phase!r}, expected 'random' or 'griffin_lim'")
    n_fft = n_fft or 4 * hop
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    window = torch.hann_window(n_fft)
    stft = lambda y: torch.stft(y, n_fft, hop, window=window, center=True, return_complex=True)  # noqa: E731
    istft = lambda s: torch.istft(s, n_fft, hop, window=window, center=True, length=x.numel())  # noqa: E731
    mag = stft(x).abs()
    g = torch.Generator().manual_seed(seed)
    angle = torch.polar(torch.ones_like(mag), 2 * math.pi * torch.rand(mag.shape, generator=g))
    for _ in range(iters if phase == "griffin_lim" else 0):
        s = stft(istft(mag * angle))
        angle = s / s.abs().clamp_min(1e-8)
    return istft(mag * angle).numpy()
