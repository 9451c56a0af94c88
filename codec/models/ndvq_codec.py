"""The NDVQ codec: normalise, encode, quantize, decode. Built from its parts by codec/build.py.

The interface a language model needs (moshi's CompressionModel is the model): `sample_rate`,
`frame_rate`, `n_q`, `codebook_size`, `encode(wav) -> codes [B, K, T]`, `decode(codes) -> wav [B, 1, T']`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import CodecConfig
from ..quantization import ResidualQuantizer
from .seanet import SEANetDecoder, SEANetEncoder


@dataclass
class CodecOutput:
    audio: torch.Tensor             # [B, 1, T] reconstruction, at the input's scale and length
    codes: torch.Tensor             # [B, K, frames]
    quant_loss: torch.Tensor        # scalar
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    pitch: object | None = None     # codec.models.istft_decoder.PitchOutput of a harmonic head, else None


@dataclass
class EncodedAudio:
    codes: torch.Tensor             # [B, K, frames] int64
    scale: torch.Tensor             # [B, 1] RMS of each input (1.0 when normalisation is off)


class NDVQCodec(nn.Module):
    def __init__(self, encoder: SEANetEncoder, decoder: SEANetDecoder | nn.Module, quantizer: ResidualQuantizer,
                 config: CodecConfig):
        """`decoder`: SEANetDecoder or codec.models.istft_decoder.ISTFTDecoder (`seanet.decoder`); both map
        [B, D, T] -> [B, 1, T * hop] and split into `pre` -> `lstm` -> `post` (codec/inference/streaming.py)."""
        super().__init__()
        self.encoder, self.decoder, self.quantizer = encoder, decoder, quantizer
        self.config = config
        self.hop_length = config.seanet.hop_length

    # -- the interface -----------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def n_q(self) -> int:
        return self.quantizer.n_q

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def bandwidths(self) -> tuple[float, ...]:
        return self.config.bandwidths

    def n_q_for_bandwidth(self, kbps: float) -> int:
        return self.config.n_q_for_bandwidth(kbps)

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    # -- pieces ------------------------------------------------------------------------------------
    def rms_scale(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """RMS + 1e-8 of each item over its valid samples.  wav [B, 1, T] -> [B, 1]"""
        if not self.config.normalize:
            return wav.new_ones(wav.shape[0], 1)
        power = wav.float().pow(2).sum(dim=(1, 2))
        n = (torch.full_like(power, wav.shape[-1]) if lengths is None else lengths.to(power)).clamp_min(1)
        return ((power / n).sqrt() + 1e-8)[:, None].to(wav.dtype)

    @property
    def harmonic(self) -> bool:
        """The decoder renders voiced frames from its own F0 (codec/models/harmonic.py)."""
        return bool(getattr(self.decoder, "harmonic", False))

    def forward(self, wav: torch.Tensor, n_q: int | None = None, f0: torch.Tensor | None = None) -> CodecOutput:
        """Training/evaluation pass.  wav [B, 1, T] -> CodecOutput (audio [B, 1, T]).

        f0 [B, frames] (Hz, 0 = unvoiced): the tracker's F0 at the frame centres, teacher-forcing a
        harmonic decoder (ignored by the others)."""
        scale = self.rms_scale(wav)
        z = self.encoder(wav / scale[:, :, None])
        q = self.quantizer(z, n_q)
        if self.harmonic:
            head = self.decoder.post[-1]
            audio = self.decoder(q.x, f0=f0)
            pitch, head.last_pitch = head.last_pitch, None     # only a training forward leaves one
        else:
            audio, pitch = self.decoder(q.x), None
        audio = audio[..., : wav.shape[-1]] * scale[:, :, None]
        return CodecOutput(audio, q.codes, q.loss, q.metrics, pitch)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor, n_q: int | None = None, lengths: torch.Tensor | None = None) -> EncodedAudio:
        """wav [B, 1, T] at `sample_rate` -> codes [B, n_q, ceil(T / hop)] and scales [B, 1]."""
        scale = self.rms_scale(wav, lengths)
        codes = self.quantizer.encode(self.encoder(wav / scale[:, :, None]), n_q)
        return EncodedAudio(codes, scale)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """codes [B, K, frames] (any K <= n_q) -> wav [B, 1, frames * hop]; scale [B, 1] or None (= 1)."""
        wav = self.decoder(self.quantizer.decode(codes))
        return wav if scale is None else wav * scale[:, :, None].to(wav.dtype)
