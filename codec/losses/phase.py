"""Phase-aware losses for the inverse-STFT decoder head.

Mel and log-magnitude losses say nothing about the phase, and the iSTFT head (codec/models/istft_decoder.py)
predicts one phase angle per bin and frame with nothing to teach it but the mel of what its overlap-add
produces. A codec knows the exact target waveform, so the target phase is available. Two families:

PhaseLoss (APNet / APCodec's phase terms, computed on the head's own predicted phase against the
target's STFT phase at the head's framing, n_fft / hop / Hann / centred frames):
    anti-wrapping  f_AW(x) = |x - 2 pi round(x / 2 pi)|   (the distance of x to the nearest multiple of 2 pi)
    IP   instantaneous phase          mean f_AW(phi_hat - phi)
    GD   group delay                  mean f_AW(D_f phi_hat - D_f phi)     D_f: difference along frequency
    IAF  instantaneous angular freq.  mean f_AW(D_t phi_hat - D_t phi)     D_t: difference along time
Every term is invariant to adding 2 pi k to any predicted phase and is 0 when the phases agree.
`weighting="magnitude"` (a departure from APNet, which weights every bin alike) weights each bin by the
target's magnitude (for GD / IAF the smaller of the two bins' magnitudes), so bins where the reference
is silent, whose phase is arbitrary, do not pull on the head. The weights are the raw magnitudes of the
batch, so within a batch a louder crop weighs more.

CompressedComplexLoss (a multi-resolution loss on the complex spectrum of the OUTPUT waveform, so it
also asks for a consistent spectrum): mean |S_hat^c - S^c|^2 over bins, S^c = |S|^c e^{i angle S}
(power-law compressed magnitude, c = 0.3, as in speech enhancement), on RMS-normalised signals so the
loss does not depend on the level of the utterance. The compression lifts the weak bins, whose phase a
plain complex / waveform loss ignores.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

PhaseWeighting = Literal["none", "magnitude"]
TWO_PI = 2 * math.pi


def anti_wrap(x: torch.Tensor) -> torch.Tensor:
    """|x - 2 pi round(x / 2 pi)|: the distance from x to the nearest multiple of 2 pi, in [0, pi]."""
    return (x - TWO_PI * torch.round(x / TWO_PI)).abs()


def _mean(x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    if w is None:
        return x.mean()
    return (x * w).sum() / w.sum().clamp_min(1e-8)


def phase_terms(phase_hat: torch.Tensor, phase: torch.Tensor, magnitude: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
    """IP, GD and IAF losses between phases [..., F, T] (radians, any wrapping).

    `magnitude` [..., F, T] (the target's), when given, weights each bin (see the module docstring).
    """
    if phase_hat.shape != phase.shape:
        raise ValueError(f"phase_terms: shapes differ {tuple(phase_hat.shape)} vs {tuple(phase.shape)}")
    w = magnitude
    w_f = None if w is None else torch.minimum(w[..., 1:, :], w[..., :-1, :])
    w_t = None if w is None else torch.minimum(w[..., :, 1:], w[..., :, :-1])
    d = phase_hat - phase
    ip = _mean(anti_wrap(d), w)
    gd = _mean(anti_wrap(d[..., 1:, :] - d[..., :-1, :]), w_f)
    iaf = _mean(anti_wrap(d[..., :, 1:] - d[..., :, :-1]), w_t)
    return {"ip": ip, "gd": gd, "iaf": iaf}


class PhaseLoss(nn.Module):
    """The head's predicted phase [B, F, N] against the STFT phase of the target waveform [B, 1, T].

    The target is analysed as the head synthesises: Hann window of n_fft, hop `hop`, frames centred on
    sample n * hop (torch.stft(center=True)); the first N frames are kept (the head writes N = T / hop).
    Returns {"ip", "gd", "iaf"}.
    """

    def __init__(self, n_fft: int, hop: int, weighting: PhaseWeighting = "none"):
        super().__init__()
        if weighting not in ("none", "magnitude"):
            raise ValueError(f"loss.phase_weighting={weighting!r}: expected 'none' or 'magnitude'")
        self.n_fft, self.hop, self.weighting = n_fft, hop, weighting
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def target(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """Complex STFT of x [B, 1, T] or [B, T] -> [B, F, frames]."""
        x = x.reshape(-1, x.shape[-1]).float()
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        if spec.shape[-1] < frames:
            raise ValueError(f"PhaseLoss: the target has {spec.shape[-1]} frames, the head {frames}")
        return spec[..., :frames]

    def forward(self, phase_hat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            spec = self.target(x, phase_hat.shape[-1])
            phase = torch.angle(spec)
            mag = spec.abs() if self.weighting == "magnitude" else None
        return phase_terms(phase_hat.float(), phase, mag)


class CompressedComplexLoss(nn.Module):
    """Mean over scales (n_fft = win = 2^i, hop = win / 4) of mean |S_hat^c - S^c|^2 between the
    power-law compressed complex STFTs of RMS-normalised x_hat and x.  [B, 1, T] x 2 -> scalar"""

    def __init__(self, scales: tuple[int, ...] = (9, 10, 11), compress: float = 0.3, eps: float = 1e-8):
        super().__init__()
        self.n_ffts = tuple(2 ** i for i in scales)
        for n in self.n_ffts:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)
        self.compress, self.eps = compress, eps

    def compressed(self, x: torch.Tensor, n: int) -> torch.Tensor:
        spec = torch.stft(x, n, n // 4, window=getattr(self, f"window_{n}"), return_complex=True)
        mag2 = spec.real.square() + spec.imag.square() + self.eps      # eps: finite gradient at |S| = 0
        # S * |S|^(c-1) = |S|^c e^{i angle S}
        return spec * mag2.pow((self.compress - 1) / 2)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x_hat, x = x_hat.reshape(-1, x_hat.shape[-1]).float(), x.reshape(-1, x.shape[-1]).float()
        scale = x.detach().square().mean(-1, keepdim=True).sqrt().clamp_min(1e-5)
        x_hat, x = x_hat / scale, x / scale
        total = x_hat.new_zeros(())
        for n in self.n_ffts:
            a, b = self.compressed(x_hat, n), self.compressed(x, n).detach()
            total = total + (a - b).abs().square().mean()
        return total / len(self.n_ffts)
