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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ISTFTConfig, PitchConfig, SEANetConfig
from .conv import SConv1d, SLSTM, pad1d
from .harmonic import (F0Bins, SourceStream, cycles, excitation_spectrum, fill_unvoiced, noise_phase,
                       sine_bank, upsample_f0)

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


@dataclass
class PitchOutput:
    """The harmonic source's outputs for a training loss.  [B, T, bins] F0 class logits, [B, T] voicing logits"""
    f0_logits: torch.Tensor
    voicing_logits: torch.Tensor


class ISTFTHead(nn.Module):
    """Frames [B, W, T] -> waveform [B, 1, T * hop]: LayerNorm, Linear to `upsample` sub-frames of
    log-magnitudes and phases each, complex spectrum, torch.istft at hop / upsample (Hann window,
    sub-frame s centred on sample s * hop / upsample).

    With a harmonic source (`pitch.source == "harmonic"`, codec/models/harmonic.py; upsample 1), a second
    Linear gives F0 class logits and a voicing logit per frame; voiced frames become
    magnitude x (the sine bank's STFT at that F0 + aperiodic share x e^{i phase}), unvoiced frames stay
    magnitude x e^{i phase}. `forward(x, f0=...)` renders with given F0/voicing (training, teacher-forced:
    [B, T] Hz, 0 = unvoiced); without it the head's own are used.
    """

    def __init__(self, dim: int, n_fft: int, hop: int, upsample: int = 1, pitch: PitchConfig | None = None,
                 sample_rate: int = 16000):
        super().__init__()
        self.n_fft, self.hop, self.upsample = n_fft, hop, upsample
        self.sub_hop = hop // upsample
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, upsample * (n_fft + 2))
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.harmonic = pitch is not None and pitch.source == "harmonic"
        if self.harmonic:
            if upsample != 1:
                raise ValueError("seanet.istft.pitch.source=harmonic needs seanet.istft.upsample=1")
            self.sample_rate = sample_rate
            self.bins = F0Bins(pitch.bins, pitch.f0_min, pitch.f0_max)
            self.pitch_proj = nn.Linear(dim, pitch.bins + 1)
            self.aperiodic = nn.Linear(dim, n_fft // 2 + 1) if pitch.aperiodic else None
            self.noise_phase = pitch.aperiodic_phase == "noise"
            if self.aperiodic is not None:      # start mostly periodic: the comb carries the voiced frames
                nn.init.zeros_(self.aperiodic.weight)
                nn.init.constant_(self.aperiodic.bias, -3.0)
        # Training with phase losses (codec/losses/phase.py) sets keep_spectrum: each training forward
        # then keeps its predicted (log-magnitude, phase) [B, n_fft/2 + 1, T * up] in `last_spectrum`.
        # With keep_detached, the kept pair is recomputed from the head's input detached, so a loss on it
        # trains this head's own LayerNorm and projection only, not the layers below (the waveform is
        # the same either way).
        self.keep_spectrum = False
        self.keep_detached = False
        self.last_spectrum: tuple[torch.Tensor, torch.Tensor] | None = None
        self.last_pitch: PitchOutput | None = None      # set by every training forward of a harmonic head

    def forward(self, x: torch.Tensor, f0: torch.Tensor | None = None, stream: SourceStream | None = None,
                window: tuple[int, int, int] | None = None) -> torch.Tensor:
        """x [B, W, T] -> [B, 1, T * hop]. `stream`/`window` (first frame, first and end emitted frame):
        a canonical window of a chunked decode (codec/inference/streaming.py)."""
        B, _, T = x.shape
        hn = self.norm(x.transpose(1, 2))
        h = self.proj(hn)                                                 # [B, T, up * (n_fft + 2)]
        h = h.reshape(B, T * self.upsample, self.n_fft + 2).transpose(1, 2)   # [B, n_fft + 2, T * up]
        with torch.autocast(device_type=h.device.type, enabled=False):
            h = h.to(torch.promote_types(h.dtype, torch.float32))      # bf16/fp16 -> fp32; fp64 stays
            log_mag, phase = h.chunk(2, dim=1)                          # [B, n_fft/2 + 1, T * up] each
            if self.keep_spectrum and self.training:
                self.last_spectrum = (log_mag, phase) if not self.keep_detached else self._spectrum(x.detach())
            mag = torch.exp(log_mag.clamp(max=MAX_LOG_MAGNITUDE))
            spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
            if self.harmonic:
                spec = self._harmonic(spec, mag, hn.to(h.dtype), f0, stream, window)
            wav = torch.istft(spec, self.n_fft, self.sub_hop, self.n_fft, window=self.window.to(h.dtype),
                              center=True, length=T * self.hop)
        return wav[:, None]

    def _harmonic(self, spec, mag, hn, f0_in, stream, window) -> torch.Tensor:
        """Voiced frames of `spec` [B, F, T] replaced by mag x (sine bank STFT + aperiodic share x e^{i phase})."""
        T = spec.shape[-1]
        logits = self.pitch_proj(hn.float())                            # [B, T, bins + 1]
        if self.training:          # for the loss; NDVQCodec.forward takes it (and clears it)
            self.last_pitch = PitchOutput(logits[..., :-1], logits[..., -1])
        own_f0 = self.bins.decode(logits[..., :-1].detach())            # [B, T] Hz
        if f0_in is not None:                                           # teacher forcing (training)
            voiced = f0_in > 0
            f0 = fill_unvoiced(f0_in.to(own_f0), voiced, own_f0)
        else:
            voiced, f0 = logits[..., -1].detach() > 0, own_f0
        start = 0.0
        if stream is not None:
            f0, voiced, start = self._stream_in(f0, voiced, stream, window)
        f0_s = upsample_f0(f0, self.hop)                                # [B, T * hop]
        run = cycles(f0_s, self.sample_rate, start)                     # [B, T * hop + 1]
        if stream is not None:
            self._stream_out(f0, voiced, run, stream, window)
        exc = sine_bank(run[:, :-1], f0_s, self.sample_rate)
        comb = excitation_spectrum(exc, self.n_fft, self.hop, T, self.window.float())
        voiced_spec = mag * comb
        if self.aperiodic is not None:
            noise = spec
            if self.noise_phase:
                first = window[0] if window is not None else 0
                ph = noise_phase(first, T, spec.shape[1], spec.device)
                noise = mag * torch.polar(torch.ones_like(ph), ph)
            voiced_spec = voiced_spec + noise * torch.sigmoid(self.aperiodic(hn.float())).transpose(1, 2)
        return torch.where(voiced[:, None, :], voiced_spec, spec)

    def _stream_in(self, f0, voiced, st: SourceStream, window):
        """The frames before the first emitted one take the previous windows' (valid) values; the start
        phase is set so that the emitted frames continue the previous window's phase."""
        first, emit_from, _ = window
        n_before = emit_from - first
        if n_before and st.f0_before is not None:
            f0, voiced = f0.clone(), voiced.clone()
            f0[:, :n_before] = st.f0_before[-n_before:]
            voiced[:, :n_before] = st.voiced_before[-n_before:]
        local = cycles(upsample_f0(f0, self.hop)[:, : n_before * self.hop + 1], self.sample_rate)
        start = st.cycles_at_next - local[:, n_before * self.hop]     # [B] float64
        return f0, voiced, start

    def _stream_out(self, f0, voiced, run, st: SourceStream, window) -> None:
        first, emit_from, emit_to = window
        st.cycles_at_next = torch.remainder(run[:, (emit_to - first) * self.hop], 1.0)
        keep = slice(emit_from - first, emit_to - first)
        prev_f0 = st.f0_before if st.f0_before is not None else f0[:, :0]
        prev_v = st.voiced_before if st.voiced_before is not None else voiced[:, :0]
        st.f0_before = torch.cat([prev_f0, f0[:, keep]], 1)[:, -st.keep:]
        st.voiced_before = torch.cat([prev_v, voiced[:, keep]], 1)[:, -st.keep:]

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
        A harmonic source adds the sine bank's reach: a frame's excitation STFT spans n/2 samples on each
        side, whose F0 comes from the frames around them (linear, so one more on the right).
        """
        up, half = self.upsample, self.n_fft // 2
        left, right = math.ceil(((half - 1) // self.sub_hop) / up), 1 + ((half - 2) // self.sub_hop) // up
        if self.harmonic:
            extra = math.ceil(half / self.hop)
            left, right = left + extra, right + extra + 1
        return left, right


class ISTFTStack(nn.Sequential):
    """The decoder's `post`: [ChannelLayerNorm, ConvNeXtBlock..., ISTFTHead].  [B, W, T] -> [B, 1, T*hop]

    `f0` [B, T] (Hz, 0 = unvoiced) goes to a harmonic head (teacher forcing); `forward_window` runs one
    canonical window of a chunked decode, carrying the harmonic source's phase (`new_stream`)."""

    def forward(self, x: torch.Tensor, f0: torch.Tensor | None = None) -> torch.Tensor:
        for m in list(self)[:-1]:
            x = m(x)
        return self[-1](x, f0=f0)

    def new_stream(self) -> SourceStream | None:
        """State for a chunked decode of one signal, or None when the head keeps none."""
        head = self[-1]
        if not getattr(head, "harmonic", False):
            return None
        return SourceStream(keep=max(self.receptive_field()))

    def forward_window(self, x: torch.Tensor, stream: SourceStream | None, first: int, emit_from: int,
                       emit_to: int) -> torch.Tensor:
        """The window of frames [first, first + T) of which [emit_from, emit_to) are kept by the caller."""
        if stream is None:
            return self(x)
        for m in list(self)[:-1]:
            x = m(x)
        return self[-1](x, stream=stream, window=(first, emit_from, emit_to))

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

    def __init__(self, cfg: SEANetConfig, sample_rate: int = 16000):
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
        head = ISTFTHead(width, n_fft, self.hop_length, icfg.upsample, icfg.pitch, sample_rate)
        self.post = ISTFTStack(ChannelLayerNorm(width), *blocks, head)

    @property
    def harmonic(self) -> bool:
        return self.post[-1].harmonic

    def forward(self, z: torch.Tensor, f0: torch.Tensor | None = None) -> torch.Tensor:
        """z [B, D, T] -> [B, 1, T * hop]; f0 [B, T] teacher-forces a harmonic head (see ISTFTHead)."""
        x = self.pre(z)
        if self.lstm is not None:
            x = self.lstm(x)
        return self.post(x, f0=f0)
