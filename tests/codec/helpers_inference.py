"""Tiny random-weight codecs for the inference tests (fast on CPU)."""
from __future__ import annotations

from dataclasses import replace

import torch

from codec.build import build_codec
from codec.config import CodecConfig, QuantizerConfig, SEANetConfig


def tiny_config(ratios=(2, 4, 5, 8), lstm: int = 1, causal: bool = False, n_q: int = 4,
                codebook_size: int = 32, kind: str = "ndvq", sample_rate: int = 16000) -> CodecConfig:
    seanet = SEANetConfig(n_filters=4, dimension=16, ratios=tuple(ratios), lstm_layers=lstm, causal=causal)
    quant = QuantizerConfig(kind=kind, dimension=16, codebook_size=codebook_size, n_q=n_q)
    cfg = CodecConfig(sample_rate=sample_rate, seanet=seanet, quantizer=quant)
    per_stage = cfg.frame_rate * cfg.bits_per_code / 1000.0
    return replace(cfg, bandwidths=tuple(round(per_stage * k, 6) for k in (1, 2, n_q)))


def tiny_model(seed: int = 0, **kw):
    """A random-weight NDVQCodec; codebooks get varied log-variances so NDVQ scoring matters."""
    torch.manual_seed(seed)
    model = build_codec(tiny_config(**kw)).eval()
    with torch.no_grad():
        for layer in model.quantizer.layers:
            if hasattr(layer, "logvar"):
                layer.mu.normal_(0, 0.5)
                layer.logvar.uniform_(-2, 0)
                layer.initialized.fill_(True)
            else:
                layer.embed.normal_(0, 0.5)
                layer.initialized.fill_(True)
    return model


def tiny_codec(seed: int = 0, **kw):
    from codec.api import Codec
    return Codec(tiny_model(seed, **kw))


def noise(n: int, seed: int = 0, channels: int | None = None):
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if channels is None else (channels, n)
    t = torch.arange(n) / 16000.0
    base = 0.3 * torch.sin(2 * torch.pi * 220 * t) * torch.sin(2 * torch.pi * 1.3 * t)
    return (base + 0.05 * torch.randn(shape, generator=g)).float()
