"""The harmonic source of the iSTFT head: F0 classes, a sine bank driven by F0, and its STFT.

Why (measurements in ../../README.md and docs/codec_pitch.md): an iSTFT head that predicts an absolute
phase per frame has nothing that ties phases across frames, so every voiced frame adds up like one pulse
per hop, and every speaker comes out at the frame rate (50 Hz). Voiced speech is periodic: its phase
is the running integral of F0. So the head predicts F0 (a class over log-spaced bins: a regression on
log F0 left female voices 164 cents low, the classes did not) and voicing, and voiced frames are
rendered as the STFT of a sine bank at that F0 (all harmonics below Nyquist, unit amplitude) times the
head's magnitude, plus an aperiodic part with the head's own phase.

    f0 [B, T] (Hz, frame rate) -> excitation [B, T * hop] -> STFT with the head's framing [B, F, T]

The sine bank is sum_{k=1..K} cos(k theta) = sin(K theta / 2) cos((K + 1) theta / 2) / sin(theta / 2),
theta = 2 pi x the running integral of F0 / sample rate (in cycles, float64, kept mod 1), K the harmonics
below 0.95 x Nyquist. Frame t's F0 sits at sample t * hop (the head's frame centre); between frames it is
linear.

Streaming (codec/inference/streaming.py runs the head on canonical windows): the running phase is state.
`SourceStream` keeps, for the next window, the cycles reached at its first output frame and the F0 of
the frames just before it (computed as output frames of the previous window, so valid), so a chunked
decode equals one pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

NYQUIST_SHARE = 0.95          # harmonics up to this share of the Nyquist frequency
SINGULAR = 1e-4               # |sin(theta / 2)| below this: the closed form's limit


class F0Bins:
    """`n` log-spaced F0 classes from f_min to f_max (bin centres), and the two ways between Hz and bins."""

    def __init__(self, n: int, f_min: float, f_max: float):
        if n < 2 or not 0 < f_min < f_max:
            raise ValueError(f"F0 bins: need n >= 2 and 0 < f_min < f_max, got {n}, {f_min}, {f_max}")
        self.n, self.f_min, self.f_max = n, f_min, f_max
        self.step = math.log(f_max / f_min) / (n - 1)         # natural log per bin

    def position(self, f0: torch.Tensor) -> torch.Tensor:
        """Continuous bin position of F0 in Hz (> 0), clamped to [0, n - 1]."""
        return (torch.log(f0.clamp_min(1e-3) / self.f_min) / self.step).clamp(0, self.n - 1)

    def soft_targets(self, f0: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
        """Gaussian targets over the bins (sigma in bins), summing to 1.  f0 [...] -> [..., n]"""
        centres = torch.arange(self.n, device=f0.device, dtype=torch.float32)
        d = self.position(f0.float())[..., None] - centres
        w = torch.exp(-0.5 * (d / sigma) ** 2)
        return w / w.sum(-1, keepdim=True)

    def decode(self, logits: torch.Tensor, radius: int = 2) -> torch.Tensor:
        """Hz from logits [..., n]: the probability-weighted log F0 of the argmax bin's +-radius
        neighbours (sub-bin precision; an expectation over all bins would average octave modes)."""
        logits = logits.float()
        top = logits.argmax(-1, keepdim=True)
        offsets = torch.arange(-radius, radius + 1, device=logits.device)
        idx = (top + offsets).clamp(0, self.n - 1)
        w = torch.softmax(logits.gather(-1, idx), dim=-1)
        pos = (w * idx.float()).sum(-1)
        return self.f_min * torch.exp(pos * self.step)


def upsample_f0(f0: torch.Tensor, hop: int) -> torch.Tensor:
    """Frame-rate F0 [B, T] (frame t at sample t * hop) -> per-sample F0 [B, T * hop], linear between
    frames, held after the last."""
    nxt = torch.cat([f0[:, 1:], f0[:, -1:]], dim=1)
    w = torch.arange(hop, device=f0.device, dtype=f0.dtype) / hop
    return (f0[:, :, None] * (1 - w) + nxt[:, :, None] * w).flatten(1)


def cycles(f0_samples: torch.Tensor, sample_rate: int, start: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Running phase in cycles (float64) at samples 0 .. N: start + the sum of f0 / sr over the samples
    before.  f0_samples [B, N] -> [B, N + 1]; start a float or [B]."""
    inc = f0_samples.double() / sample_rate
    run = F.pad(torch.cumsum(inc, dim=1), (1, 0))
    return run + (start if isinstance(start, float) else start.double()[:, None])


def sine_bank(phase_cycles: torch.Tensor, f0_samples: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """sum_{k=1..K} cos(2 pi k phase), K = harmonics of f0 below NYQUIST_SHARE x Nyquist.  [B, N] float32"""
    theta = 2 * math.pi * torch.remainder(phase_cycles, 1.0)        # float64, in [0, 2 pi)
    K = torch.floor(NYQUIST_SHARE * sample_rate / 2 / f0_samples.double().clamp_min(1.0)).clamp_min(1.0)
    half = torch.sin(theta / 2)
    safe = torch.where(half.abs() < SINGULAR, torch.ones_like(half), half)
    value = torch.sin(K * theta / 2) * torch.cos((K + 1) * theta / 2) / safe
    return torch.where(half.abs() < SINGULAR, K, value).float()


def excitation_spectrum(exc: torch.Tensor, n_fft: int, hop: int, frames: int, window: torch.Tensor) -> torch.Tensor:
    """The STFT of the excitation with the head's framing (frame t centred on sample t * hop), scaled so a
    unit-amplitude harmonic peaks at 1.  exc [B, N] -> complex [B, n_fft / 2 + 1, frames]"""
    spec = torch.stft(exc, n_fft, hop, n_fft, window=window, center=True, pad_mode="constant",
                      return_complex=True)[..., :frames]
    return spec * (2.0 / float(window.sum()))


def noise_phase(first: int, frames: int, bins: int, device=None) -> torch.Tensor:
    """A fixed pseudo-random phase [bins, frames] for frames first .. first + frames - 1 (an integer hash of
    (frame, bin)): the same for a frame whichever window computes it, so chunked decoding stays exact."""
    t = torch.arange(first, first + frames, device=device, dtype=torch.int64)[None, :]
    k = torch.arange(bins, device=device, dtype=torch.int64)[:, None]
    h = ((t * 73856093) ^ (k * 19349663)) % 4294967291
    h = (h * 2654435761) % 4294967296
    return h.double().div(4294967296.0).mul(2 * math.pi).float()


@dataclass
class SourceStream:
    """The sine bank's state between canonical windows of a chunked decode."""
    keep: int                            # frames of F0 kept from earlier windows (the window's left context)
    cycles_at_next: torch.Tensor | float = 0.0     # [B] running phase (cycles, mod 1) at the next window's
                                                   # first emitted frame
    f0_before: torch.Tensor | None = None          # [B, <= keep] F0 of the frames just before it
    voiced_before: torch.Tensor | None = None      # [B, <= keep] their voicing


def fill_unvoiced(f0: torch.Tensor, voiced: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """F0 where voiced, `fallback` (the head's own estimate) elsewhere: a local rule, so a window of frames
    gives the same values as one pass."""
    return torch.where(voiced, f0, fallback)
