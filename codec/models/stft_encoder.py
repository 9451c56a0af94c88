"""A spectral encoder (an option for the mini codec, `seanet.encoder: stft`): the encoder counterpart
of the inverse-STFT decoder head.

    waveform [B, 1, T * hop] -> pre: log-magnitude STFT at hop / upsample (n_fft / 2 + 1 bins),
                                     Linear to W, ConvNeXt blocks at the sub-frame rate,
                                     LayerNorm + strided conv (kernel = stride = upsample) to the frame rate,
                                     ConvNeXt blocks at the frame rate, LayerNorm
                             -> post: conv k3 W -> dimension                  -> latent [B, D, T]

Why: SEANet's encoder learns its filterbank from the waveform with strided convolutions at the
sample rate; on 2 CPU cores that costs most of a training step, and after 10 minutes it still hands
the decoder little more than the energy envelope (formant tracks absent from the reconstructions).
An STFT gives the formant structure for free and everything after it runs at 100 / 50 Hz.
SEANet stays the paper's default.

It keeps SEANetEncoder's `pre` -> `lstm` -> `post` split so codec/inference/streaming.py streams it unchanged:
`pre` declares its receptive field (`STFTEncoderStack.receptive_field`, checked against a
perturbation measurement in tests/codec/test_stft_encoder.py), `post` is one convolution the probe
measures, and `pre[0]` (the STFT, no weights) is the layer reduced-precision inference keeps in float32.

Decisions:
- Framing: the input is zero-padded on the right to a multiple of the hop (as SEANet's convolutions
  pad to give ceil(samples / hop) frames), then sub-frame s is centred on sample s * hop / upsample
  (torch.stft(center=True), reflect padding at the ends), and the last STFT frame (centred on the
  padded end) is dropped: exactly T * upsample sub-frames for T code frames.
- log(max(|X|, 1e-5)): the codec divides its input by the RMS, so the floor sits ~100 dB below speech.
- Non-causal, like the iSTFT head; `causal=True` is refused when the encoder is built.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SEANetConfig
from .conv import SConv1d
from .istft_decoder import ChannelLayerNorm, ConvNeXtBlock, require_noncausal_mono, resolve_n_fft

LOG_FLOOR = 1e-5


class STFTFeatures(nn.Module):
    """Waveform [B, 1, L] -> log-magnitude STFT [B, n_fft / 2 + 1, ceil(L / hop) * upsample]."""

    def __init__(self, n_fft: int, hop: int, upsample: int):
        super().__init__()
        self.n_fft, self.hop, self.upsample, self.sub_hop = n_fft, hop, upsample, hop // upsample
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, L = x.shape
        frames = math.ceil(L / self.hop)
        x = F.pad(x.reshape(B, L).float(), (0, frames * self.hop - L))
        if x.shape[-1] <= self.n_fft // 2:          # reflect padding needs more samples than the pad
            x = F.pad(x, (0, self.n_fft // 2 + 1 - x.shape[-1]))
        spec = torch.stft(x, self.n_fft, self.sub_hop, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        return torch.log(spec.abs().clamp_min(LOG_FLOOR))[..., :frames * self.upsample]

    def sample_reach(self) -> tuple[int, int]:
        """(left, right) samples around a sub-frame's centre with a non-zero window weight
        (periodic Hann: w[0] = 0)."""
        return self.n_fft // 2 - 1, self.n_fft // 2 - 1


class Linear1d(nn.Module):
    """A per-frame Linear on [B, C, T] (a 1x1 conv as one GEMM on rows)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.linear = nn.Linear(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.transpose(1, 2)).transpose(1, 2)


class Downsample(nn.Module):
    """Sub-frames [B, W, T * up] -> frames [B, W, T]: a conv with kernel = stride = up (no overlap)."""

    def __init__(self, dim: int, factor: int):
        super().__init__()
        self.factor = factor
        self.conv = nn.Conv1d(dim, dim, factor, stride=factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class STFTEncoderStack(nn.Sequential):
    """The encoder's `pre`: [STFTFeatures, Linear1d, ConvNeXt..., (ChannelLayerNorm, Downsample),
    ConvNeXt..., ChannelLayerNorm]."""

    def receptive_field(self) -> tuple[int, int]:
        """(left, right) in hop-sized input blocks: output frame t depends on input blocks
        [t - left, t + right]. Declared, not probed (LayerNorms and the STFT magnitude hide it from the
        positive-weight probe): frame-rate convs add their reach in frames, sub-frame convs in
        sub-frames, the STFT its half window in samples."""
        feats: STFTFeatures = self[0]
        hop, sub = feats.hop, feats.sub_hop
        sub_reach = frame_reach = 0
        seen_down = False
        for m in self:
            if isinstance(m, Downsample):
                seen_down = True
            elif isinstance(m, ConvNeXtBlock):
                if seen_down:
                    frame_reach += m.reach
                else:
                    sub_reach += m.reach
        left_s, right_s = feats.sample_reach()
        # frame t <- frames t +- frame_reach <- sub-frames [u*up - sub_reach, u*up + up - 1 + sub_reach]
        # <- samples [s*sub - left_s, s*sub + right_s]; t*up*sub = t*hop
        left = math.ceil((frame_reach * hop + sub_reach * sub + left_s) / hop)
        right = frame_reach + (hop - sub + sub_reach * sub + right_s) // hop
        return left, right


class STFTEncoder(nn.Module):
    """Waveform [B, 1, T] -> latent [B, dimension, ceil(T / hop)] from a log-magnitude STFT."""

    def __init__(self, cfg: SEANetConfig):
        super().__init__()
        ecfg = cfg.stft_encoder
        require_noncausal_mono(cfg, "seanet.encoder=stft", "its STFT windows are centred")
        hop, up = cfg.hop_length, ecfg.upsample
        n_fft = resolve_n_fft(ecfg, hop, "seanet.stft_encoder")
        width, hidden = ecfg.width, int(round(ecfg.mlp_ratio * ecfg.width))
        scale = 1.0 / max(1, ecfg.sub_blocks + ecfg.frame_blocks)

        def blocks(n: int) -> list[nn.Module]:
            return [ConvNeXtBlock(width, hidden, ecfg.kernel_size, scale, cfg.pad_mode) for _ in range(n)]

        layers: list[nn.Module] = [STFTFeatures(n_fft, hop, up), Linear1d(n_fft // 2 + 1, width),
                                   *blocks(ecfg.sub_blocks)]
        if up > 1:
            layers += [ChannelLayerNorm(width), Downsample(width, up)]
        layers += [*blocks(ecfg.frame_blocks), ChannelLayerNorm(width)]
        self.pre = STFTEncoderStack(*layers)
        self.lstm = None
        self.post = nn.Sequential(SConv1d(width, cfg.dimension, 3, norm="none", pad_mode=cfg.pad_mode))
        self.hop_length = hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.pre(x))
