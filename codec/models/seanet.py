"""EnCodec's SEANet encoder and decoder.

Both are split in three parts, `pre` (convolutions), `lstm` (unidirectional, so causal in time) and
`post` (convolutions), so that long-audio inference can run the convolutions on overlapping chunks
and carry the LSTM state between them (see codec/inference/streaming.py).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import SEANetConfig
from .conv import SConv1d, SConvTranspose1d, SLSTM


class ResidualUnit(nn.Module):
    """ELU, conv k3 C->C/compress (dilated), ELU, conv k1 back to C; a 1x1 conv shortcut."""

    def __init__(self, dim: int, cfg: SEANetConfig, dilation: int):
        super().__init__()
        hidden = dim // cfg.compress
        conv = dict(causal=cfg.causal, norm=cfg.norm, pad_mode=cfg.pad_mode)
        self.block = nn.Sequential(
            nn.ELU(),
            SConv1d(dim, hidden, cfg.residual_kernel_size, dilation=dilation, **conv),
            nn.ELU(),
            SConv1d(hidden, dim, 1, **conv),
        )
        self.shortcut = SConv1d(dim, dim, 1, **conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SEANetEncoder(nn.Module):
    """Waveform [B, channels, T] -> latent [B, dimension, ceil(T / hop)]."""

    def __init__(self, cfg: SEANetConfig):
        super().__init__()
        conv = dict(causal=cfg.causal, norm=cfg.norm, pad_mode=cfg.pad_mode)
        mult = 1
        layers: list[nn.Module] = [SConv1d(cfg.channels, cfg.n_filters, cfg.kernel_size, **conv)]
        for ratio in reversed(cfg.ratios):      # 2, 4, 5, 8
            dim = mult * cfg.n_filters
            layers += [ResidualUnit(dim, cfg, cfg.dilation_base ** j) for j in range(cfg.n_residual_layers)]
            layers += [nn.ELU(), SConv1d(dim, dim * 2, ratio * 2, stride=ratio, **conv)]
            mult *= 2
        self.pre = nn.Sequential(*layers)
        width = mult * cfg.n_filters
        self.lstm = SLSTM(width, cfg.lstm_layers) if cfg.lstm_layers else None
        self.post = nn.Sequential(nn.ELU(), SConv1d(width, cfg.dimension, cfg.last_kernel_size, **conv))
        self.hop_length = cfg.hop_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        if self.lstm is not None:
            x = self.lstm(x)
        return self.post(x)


class SEANetDecoder(nn.Module):
    """Latent [B, dimension, T] -> waveform [B, channels, T * hop] (no final activation)."""

    def __init__(self, cfg: SEANetConfig):
        super().__init__()
        conv = dict(causal=cfg.causal, norm=cfg.norm, pad_mode=cfg.pad_mode)
        mult = 2 ** len(cfg.ratios)
        width = mult * cfg.n_filters
        self.pre = SConv1d(cfg.dimension, width, cfg.kernel_size, **conv)
        self.lstm = SLSTM(width, cfg.lstm_layers) if cfg.lstm_layers else None
        layers: list[nn.Module] = []
        for ratio in cfg.ratios:                # 8, 5, 4, 2
            dim = mult * cfg.n_filters
            layers += [nn.ELU(), SConvTranspose1d(dim, dim // 2, ratio * 2, stride=ratio,
                                                  causal=cfg.causal, norm=cfg.norm)]
            layers += [ResidualUnit(dim // 2, cfg, cfg.dilation_base ** j) for j in range(cfg.n_residual_layers)]
            mult //= 2
        layers += [nn.ELU(), SConv1d(cfg.n_filters, cfg.channels, cfg.last_kernel_size, **conv)]
        self.post = nn.Sequential(*layers)
        self.hop_length = cfg.hop_length

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.pre(z)
        if self.lstm is not None:
            x = self.lstm(x)
        return self.post(x)
