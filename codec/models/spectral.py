"""Spectrograms without torchaudio: torch.stft and a mel filterbank, HTK (matches torchaudio's
MelSpectrogram with norm=None, mel_scale='htk') or Slaney (librosa's default: Slaney's mel scale and
area-normalised filters, as the authors' training code used)."""
from __future__ import annotations

import functools
import math

import torch
from torch import nn


def _hz_to_mel(f: float | torch.Tensor):
    return 2595.0 * (torch.log10(1.0 + f / 700.0) if isinstance(f, torch.Tensor) else math.log10(1.0 + f / 700.0))


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


_SLANEY_F_SP = 200.0 / 3          # Hz per mel below 1 kHz
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def _hz_to_slaney(f: torch.Tensor) -> torch.Tensor:
    lin = f / _SLANEY_F_SP
    log = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP + torch.log(f.clamp_min(1e-10) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return torch.where(f >= _SLANEY_MIN_LOG_HZ, log, lin)


def _slaney_to_hz(m: torch.Tensor) -> torch.Tensor:
    min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
    return torch.where(m >= min_log_mel, _SLANEY_MIN_LOG_HZ * torch.exp(_SLANEY_LOGSTEP * (m - min_log_mel)),
                       _SLANEY_F_SP * m)


@functools.lru_cache(maxsize=64)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0,
                   f_max: float | None = None, kind: str = "htk") -> torch.Tensor:
    """Triangular mel filters [n_mels, n_fft // 2 + 1].

    kind "htk": HTK mel scale, unnormalised (peak 1). "slaney": Slaney's scale (linear below 1 kHz),
    each filter scaled by 2 / bandwidth so it has unit area (librosa.filters.mel's default).
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    if kind == "htk":
        mels = torch.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
        hz = _mel_to_hz(mels)
    elif kind == "slaney":
        lo, hi = _hz_to_slaney(torch.tensor(float(f_min), dtype=torch.float64)), \
            _hz_to_slaney(torch.tensor(float(f_max), dtype=torch.float64))
        hz = _slaney_to_hz(torch.linspace(float(lo), float(hi), n_mels + 2, dtype=torch.float64))
    else:
        raise ValueError(f"unknown mel filterbank kind {kind!r} (expected 'htk' or 'slaney')")
    lower, center, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lower) / (center - lower)
    down = (upper - freqs[None]) / (upper - center)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)
    if kind == "slaney":
        fb = fb * (2.0 / (upper - lower))
    return fb.float()


class MelSpectrogram(nn.Module):
    """Magnitude mel spectrogram.  [B, 1, T] or [B, T] -> [B, n_mels, frames]"""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, power: float = 1.0,
                 filterbank: str = "htk"):
        super().__init__()
        self.n_fft, self.hop_length, self.power = n_fft, hop_length, power
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        fb = mel_filterbank(sample_rate, n_fft, n_mels, kind=filterbank).clone()
        self.register_buffer("fbank", fb, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.squeeze(1)
        pad = self.n_fft // 2
        if x.shape[-1] <= pad:   # reflect padding needs more samples than the pad
            x = torch.nn.functional.pad(x, (0, pad + 1 - x.shape[-1]))
        spec = torch.stft(x.float(), self.n_fft, self.hop_length, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True).abs()
        if self.power != 1.0:
            spec = spec.pow(self.power)
        return self.fbank @ spec


def log_mel(mel: torch.Tensor, clamp: float = 1e-5) -> torch.Tensor:
    return torch.log10(mel.clamp_min(clamp))
