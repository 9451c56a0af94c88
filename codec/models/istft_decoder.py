"""An inverse-STFT decoder head (Vocos / WavTokenizer style): an option for the mini codec.

    latent [B, D, T] -> pre: conv k7 D -> W (frame rate)
                     -> lstm: optional unidirectional LSTM with skip (as SEANet's; `lstm_layers`)
                     -> post: LayerNorm, n ConvNeXt blocks, LayerNorm, Linear W -> n_fft + 2
                              (n_fft/2 + 1 log-magnitudes and as many phase angles),
                              complex STFT, torch.istft  -> waveform [B, 1, T * hop]

Everything before the iSTFT runs at the frame rate (75 Hz for the 24 kHz codecs), so it is cheap on
CPU, and the iSTFT writes the waveform through an FFT instead of four up-sampling stages. The hop is
the codec's hop, so the frame rate, the codes and the output length (exactly T * hop samples, as
SEANetDecoder) do not change. SEANet stays the paper default (`seanet.decoder: seanet`).

It keeps SEANetDecoder's `pre` -> `lstm` -> `post` split so codec/inference/streaming.py streams it unchanged
(LSTM state carried, `post` run on canonical windows with context). `post` declares its receptive
field (`ISTFTStack.receptive_field`) instead of having it measured: the positive-weight probe of
codec.inference.streaming.measure_reach cannot see through a LayerNorm over channels (with equal channels its
Jacobian projects a uniform gradient to zero) nor through cos/sin, and would under-count the
depthwise convolutions. tests/codec/test_istft_decoder.py checks the declaration against a
perturbation measurement (enough and needed).

Decisions:
- Framing: frame t is centred on sample t * hop (torch.istft(center=True)), and `length=T * hop`
  keeps the first T * hop samples. Output block t (samples [t*hop, (t+1)*hop)) is then made by the
  frames t - ceil(a) + 1 .. t + ceil(a), a = n_fft / (2 hop): every sample is covered by n_fft / hop
  windows, the window envelope is never near zero (no amplified edges), and no manual overlap-add is
  needed. Needs n_fft >= 2 * hop (so the first T * hop samples exist); default n_fft = 4 * hop.
- No weight norm: each block normalises its input with a LayerNorm (ConvNeXt), and weight norm
  would only add a per-step reparametrisation; `SEANetConfig.norm` applies to SEANet only.
- Non-causal only: the overlap-add needs frames after t for block t (a = 2 frames at n_fft = 4 hop),
  so `causal=True` is refused when the decoder is built rather than silently looking ahead.
- Magnitudes are exp(log-magnitude clamped at MAX_LOG_MAGNITUDE) so a large output cannot overflow;
  the clamp (exp(10) ~ 2e4, about 30x the peak bin of a full-scale sine at n_fft 1280) is far above
  what RMS-normalised speech needs, so it never binds in normal training. The spectrum and the
  iSTFT are computed in float32 even under autocast or a bf16 inference copy.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ISTFTConfig, SEANetConfig
from .conv import SConv1d, SLSTM, pad1d

MAX_LOG_MAGNITUDE = 10.0


def resolve_n_fft(cfg: ISTFTConfig, hop: int, option: str = "seanet.istft") -> int:
    """The FFT size of a spectral part (this head, or codec/models/stft_encoder.py's STFT; `cfg` has
    `upsample` and `n_fft`): `cfg.n_fft`, or 4 * its hop (hop / upsample) when it is 0.
    Checked: the upsampling divides the hop, n_fft is even and >= 2 * the part's hop."""
    if cfg.upsample < 1 or hop % cfg.upsample:
        raise ValueError(f"{option}.upsample={cfg.upsample}: must be >= 1 and divide the hop ({hop})")
    sub_hop = hop // cfg.upsample
    n_fft = cfg.n_fft or 4 * sub_hop
    if n_fft % 2 or n_fft < 2 * sub_hop:
        raise ValueError(f"{option}.n_fft={n_fft}: must be even and >= 2 * hop / upsample ({2 * sub_hop})")
    return n_fft


def require_noncausal_mono(cfg: SEANetConfig, option: str, why: str) -> None:
    """The spectral parts are non-causal (centred windows) and mono: refuse other settings when built."""
    if cfg.causal:
        raise ValueError(f"{option} is non-causal ({why}); use the SEANet part with seanet.causal=true")
    if cfg.channels != 1:
        raise ValueError(f"{option} is mono; seanet.channels={cfg.channels}")


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of [B, C, T] (each frame on its own)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ConvNeXtBlock(nn.Module):
    """x + gamma * MLP(LayerNorm(depthwise_conv(x))), MLP = Linear W->H, GELU, Linear H->W.  [B, W, T]

    The depthwise conv pads like SConv1d (`pad_mode`, both sides), so its output has T frames.
    """

    def __init__(self, dim: int, hidden: int, kernel_size: int, layer_scale: float, pad_mode: str):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"seanet.istft.kernel_size={kernel_size}: must be odd (same-length conv)")
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))
        self.pad, self.pad_mode = kernel_size // 2, pad_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(pad1d(x.contiguous(), (self.pad, self.pad), self.pad_mode))
        h = self.fc2(F.gelu(self.fc1(self.norm(h.transpose(1, 2)))))     # [B, T, W]: GEMMs on rows
        return x + (self.gamma * h).transpose(1, 2)

    @property
    def reach(self) -> int:
        return self.pad


class ISTFTHead(nn.Module):
    """Frames [B, W, T] -> waveform [B, 1, T * hop]: LayerNorm, Linear to `upsample` sub-frames of
    log-magnitudes and phases each, complex spectrum, torch.istft at hop / upsample (Hann window,
    sub-frame s centred on sample s * hop / upsample)."""

    def __init__(self, dim: int, n_fft: int, hop: int, upsample: int = 1):
        super().__init__()
        self.n_fft, self.hop, self.upsample = n_fft, hop, upsample
        self.sub_hop = hop // upsample
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, upsample * (n_fft + 2))
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # Training with phase losses (codec/losses/phase.py) sets keep_spectrum: each training forward
        # then keeps its predicted (log-magnitude, phase) [B, n_fft/2 + 1, T * up] in `last_spectrum`.
        # With keep_detached, the kept pair is recomputed from the head's input detached, so a loss on it
        # trains this head's own LayerNorm and projection only, not the layers below (the waveform is
        # the same either way).
        self.keep_spectrum = False
        self.keep_detached = False
        self.last_spectrum: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, T = x.shape
        h = self.proj(self.norm(x.transpose(1, 2)))                      # [B, T, up * (n_fft + 2)]
        h = h.reshape(B, T * self.upsample, self.n_fft + 2).transpose(1, 2)   # [B, n_fft + 2, T * up]
        with torch.autocast(device_type=h.device.type, enabled=False):
            h = h.to(torch.promote_types(h.dtype, torch.float32))      # bf16/fp16 -> fp32; fp64 stays
            log_mag, phase = h.chunk(2, dim=1)                          # [B, n_fft/2 + 1, T * up] each
            if self.keep_spectrum and self.training:
                self.last_spectrum = (log_mag, phase) if not self.keep_detached else self._spectrum(x.detach())
            mag = torch.exp(log_mag.clamp(max=MAX_LOG_MAGNITUDE))
            spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
            wav = torch.istft(spec, self.n_fft, self.sub_hop, self.n_fft, window=self.window.to(h.dtype),
                              center=True, length=T * self.hop)
        return wav[:, None]

    def _spectrum(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-magnitude, phase) [B, n_fft/2 + 1, T * up] of frames x [B, W, T], in float32."""
        B, _, T = x.shape
        h = self.proj(self.norm(x.transpose(1, 2))).reshape(B, T * self.upsample, self.n_fft + 2).transpose(1, 2)
        log_mag, phase = h.float().chunk(2, dim=1)
        return log_mag, phase

    def frame_reach(self) -> tuple[int, int]:
        """(left, right): the frames t - left .. t + right have a non-zero window sample in output block t.

        Sub-frame s spans samples s*h - n/2 + 1 .. s*h + n/2 - 1 with non-zero weight (h = hop / upsample,
        n = n_fft, periodic Hann: w[0] = 0), so block t = [t*hop, (t+1)*hop) sees sub-frames
        t*up - floor((n/2 - 1)/h) .. (t+1)*up + floor((n/2 - 2)/h), and sub-frame s belongs to frame s // up.
        """
        up, half = self.upsample, self.n_fft // 2
        return math.ceil(((half - 1) // self.sub_hop) / up), 1 + ((half - 2) // self.sub_hop) // up


class ISTFTStack(nn.Sequential):
    """The decoder's `post`: [ChannelLayerNorm, ConvNeXtBlock..., ISTFTHead].  [B, W, T] -> [B, 1, T*hop]"""

    def receptive_field(self) -> tuple[int, int]:
        """(left, right) in frames: output block t depends on latent frames [t - left, t + right].

        Declared, not probed (see the module docstring): the depthwise convs add their padding on
        each side, the LayerNorms and Linears act on each frame alone, the iSTFT adds its overlap.
        """
        conv = sum(m.reach for m in self if isinstance(m, ConvNeXtBlock))
        left, right = self[-1].frame_reach()
        return conv + left, conv + right


class ISTFTDecoder(nn.Module):
    """Latent [B, dimension, T] -> waveform [B, 1, T * hop] through an inverse STFT."""

    def __init__(self, cfg: SEANetConfig):
        super().__init__()
        icfg = cfg.istft
        require_noncausal_mono(cfg, "seanet.decoder=istft", "the overlap-add needs the frames after each block")
        self.hop_length = cfg.hop_length
        n_fft = resolve_n_fft(icfg, self.hop_length)
        width = icfg.width
        self.pre = SConv1d(cfg.dimension, width, icfg.pre_kernel_size, norm="none", pad_mode=cfg.pad_mode)
        self.lstm = SLSTM(width, cfg.lstm_layers) if cfg.lstm_layers else None
        scale = icfg.layer_scale if icfg.layer_scale > 0 else 1.0 / max(1, icfg.n_blocks)
        hidden = int(round(icfg.mlp_ratio * width))
        blocks = [ConvNeXtBlock(width, hidden, icfg.kernel_size, scale, cfg.pad_mode) for _ in range(icfg.n_blocks)]
        self.post = ISTFTStack(ChannelLayerNorm(width), *blocks, ISTFTHead(width, n_fft, self.hop_length,
                                                                                   icfg.upsample))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.pre(z)
        if self.lstm is not None:
            x = self.lstm(x)
        return self.post(x)
