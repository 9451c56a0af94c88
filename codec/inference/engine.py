"""The inference engine behind codec.api.Codec: a folded eval-mode copy of an NDVQCodec, rewritten for
speed (codec/inference/optimize.py), with its fused quantizer and the measured receptive fields its
canonical windows need (codec/inference/streaming.py).
"""
from __future__ import annotations

import copy
from typing import Union

import torch

from .optimize import PRECISIONS, FusedQuantizer, Precision, apply_precision, optimize_for_inference
from ..models.conv import fold_weight_norm
from ..models.ndvq_codec import NDVQCodec
from .streaming import ChunkedDecoder, Reach, encode_stream, measure_reach


class InferenceEngine:
    """The folded eval-mode copy of a model plus its fused quantizer and measured receptive fields.

    `precision` picks the arithmetic of the convolutions and LSTMs (codec.inference.optimize.apply_precision);
    the quantizer always runs in float32. Codes are deterministic within one precision; a bf16
    engine's codes and audio are close to, not equal to, float32's.
    """

    def __init__(self, model: NDVQCodec, device: Union[str, torch.device, None] = None,
                 precision: Precision = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r} (expected one of {PRECISIONS})")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.precision = precision
        m = fold_weight_norm(copy.deepcopy(model)).eval()
        for p in m.parameters():
            p.requires_grad_(False)
        self.model = m
        self.sample_rate = model.sample_rate
        self.frame_rate = model.frame_rate
        self.hop_length = model.hop_length
        self._reach: dict[str, Reach] = {}
        for name in ("enc_pre", "enc_post", "dec_pre", "dec_post"):
            self.reach(name)                        # before the rewrites: the probes need plain stacks
        optimize_for_inference(m)
        apply_precision(m, precision)
        self.model = m.to(self.device)
        self.quantizer = FusedQuantizer(m.quantizer).to(self.device)

    def reach(self, name: str) -> Reach:
        if name not in self._reach:
            m, cfg, hop = self.model, self.model.config.seanet, self.hop_length
            spec = {"enc_pre": (m.encoder.pre, cfg.channels, hop, 1),
                    "enc_post": (m.encoder.post, m.encoder.post[-1].conv.in_channels, 1, 1),
                    "dec_pre": (m.decoder.pre, cfg.dimension, 1, 1),
                    "dec_post": (m.decoder.post, m.decoder.pre.conv.out_channels, 1, hop)}[name]
            self._reach[name] = measure_reach(*spec)
        return self._reach[name]

    def encode_item(self, wav: torch.Tensor, scale: float, n_q: int, chunk: int) -> torch.Tensor:
        """Unscaled mono [N] -> codes [n_q, ceil(N / hop)] (canonical windows; see codec.inference.streaming)."""
        return encode_stream(self, [wav], scale, n_q, chunk)[0]

    def decode_item(self, codes: torch.Tensor, chunk: int) -> torch.Tensor:
        """codes [K, T] -> unscaled audio [T * hop] (canonical windows)."""
        dec = ChunkedDecoder(self, chunk)
        with torch.inference_mode():
            return torch.cat(dec.push(codes[None].to(self.device), final=True), dim=-1)[0, 0]
