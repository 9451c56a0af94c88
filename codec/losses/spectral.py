"""Reconstruction losses of the spec (EnCodec's): multi-scale mel, multi-resolution STFT, and the
mel distance the training validation reports."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.spectral import MelSpectrogram, log_mel


class MultiScaleMelLoss(nn.Module):
    """Mean over scales (n_fft = win = 2^i, hop = win/4) of L1 + mse_weight * MSE between log10 mel
    spectrograms (the spec: magnitude mels, L1 + MSE, 7 scales; options: power mels, Slaney filters).

    A scale whose FFT has fewer bins than mel filters (n_fft 32 -> 17 bins for 64 mels) leaves filters
    empty; they sit at the log floor on both sides and add nothing but cost.
    """

    def __init__(self, sample_rate: int, n_mels: int, scales: tuple[int, ...] = (5, 6, 7, 8, 9, 10, 11),
                 power: float = 1.0, filterbank: str = "htk", mse_weight: float = 1.0, floor: float = 1e-5):
        super().__init__()
        self.mels = nn.ModuleList([MelSpectrogram(sample_rate, 2 ** i, 2 ** i // 4, n_mels, power, filterbank)
                                   for i in scales])
        self.mse_weight, self.floor = mse_weight, floor

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        total = x_hat.new_zeros(())
        for mel in self.mels:
            a, b = log_mel(mel(x_hat), self.floor), log_mel(mel(x), self.floor)
            total = total + F.l1_loss(a, b)
            if self.mse_weight:
                total = total + self.mse_weight * F.mse_loss(a, b)
        return total / len(self.mels)


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over scales (n_fft = win = 2^i, hop = win/4) of spectral convergence + L1 of log magnitudes,
    on the linear-frequency STFT (Parallel WaveGAN's auxiliary loss).  [B, 1, T] x 2 -> scalar

    Why next to the mel loss: a 64-band mel of a 2048-point FFT pools the harmonics above ~1 kHz, so
    the decoder is told the envelope but not where the partials sit; the linear bins are.
    """

    def __init__(self, scales: tuple[int, ...] = (9, 10, 11), floor: float = 1e-5):
        super().__init__()
        self.n_ffts = tuple(2 ** i for i in scales)
        for n in self.n_ffts:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)
        self.floor = floor

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x_hat, x = x_hat.flatten(0, -2).float(), x.flatten(0, -2).float()
        total = x_hat.new_zeros(())
        for n in self.n_ffts:
            window = getattr(self, f"window_{n}")
            a = torch.stft(x_hat, n, n // 4, window=window, return_complex=True).abs()
            b = torch.stft(x, n, n // 4, window=window, return_complex=True).abs()
            convergence = torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(self.floor)
            log_l1 = F.l1_loss(torch.log(a.clamp_min(self.floor)), torch.log(b.clamp_min(self.floor)))
            total = total + convergence + log_l1
        return total / len(self.n_ffts)


def mel_distance(x_hat: torch.Tensor, x: torch.Tensor, sample_rate: int, n_mels: int = 80,
                 n_fft: int = 1024) -> torch.Tensor:
    """Evaluation metric: mean L1 between log10 mel spectrograms at one resolution (hop n_fft/4)."""
    mel = MelSpectrogram(sample_rate, n_fft, n_fft // 4, n_mels).to(x.device)
    return F.l1_loss(log_mel(mel(x_hat)), log_mel(mel(x)))
