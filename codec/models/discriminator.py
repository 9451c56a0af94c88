"""Multi-scale STFT discriminator (EnCodec): one 2-D conv net per STFT resolution."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..config import DiscriminatorConfig


def _same_padding(kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    return ((kernel[0] - 1) * dilation[0] // 2, (kernel[1] - 1) * dilation[1] // 2)


class STFTDiscriminator(nn.Module):
    """Normalised complex STFT as (real, imag) channels -> logits and feature maps.

    Input [B, 1, T]; spectrogram laid out [B, 2, frames, freq]; kernels are (time, freq).
    """

    def __init__(self, n_fft: int, cfg: DiscriminatorConfig):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        f, k = cfg.filters, tuple(cfg.kernel_size)
        convs = [weight_norm(nn.Conv2d(2, f, k, padding=_same_padding(k)))]
        for d in cfg.dilations:
            convs.append(weight_norm(nn.Conv2d(f, f, k, stride=(1, 2), dilation=(d, 1),
                                               padding=_same_padding(k, (d, 1)))))
        convs.append(weight_norm(nn.Conv2d(f, f, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(convs)
        self.conv_post = weight_norm(nn.Conv2d(f, 1, (3, 3), padding=(1, 1)))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x.squeeze(1).float(), self.n_fft, self.hop, window=self.window,
                          normalized=True, center=True, return_complex=True)      # [B, F, frames]
        z = torch.stack([spec.real, spec.imag], 1).transpose(2, 3)               # [B, 2, frames, F]
        # channels-last memory: oneDNN runs the 2-D convs natively on it instead of reordering every
        # activation to its blocked layout and back (the convs below keep the layout).
        z = z.contiguous(memory_format=torch.channels_last)
        features = []
        for conv in self.convs:
            z = self.act(conv(z))
            features.append(z)
        return self.conv_post(z), features


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.discriminators = nn.ModuleList([STFTDiscriminator(n, cfg) for n in cfg.n_ffts])

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """x [B, 1, T] -> (logits per scale, feature maps per scale)."""
        logits, features = [], []
        for d in self.discriminators:
            lg, ft = d(x)
            logits.append(lg)
            features.append(ft)
        return logits, features
