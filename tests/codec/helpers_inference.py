"""Tiny random-weight codecs for the inference tests (fast on CPU)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from codec.build import build_codec
from codec.config import CodecConfig, QuantizerConfig, SEANetConfig, STFTEncoderConfig

# A small spectral encoder (seanet.encoder=stft) for tiny models
TINY_STFT_ENCODER = STFTEncoderConfig(width=24, sub_blocks=1, frame_blocks=1, mlp_ratio=2.0, kernel_size=3)


def tiny_config(ratios=(2, 4, 5, 8), lstm: int = 1, causal: bool = False, n_q: int = 4,
                codebook_size: int = 32, kind: str = "ndvq", sample_rate: int = 16000,
                encoder: str = "seanet", stft_encoder: STFTEncoderConfig = TINY_STFT_ENCODER) -> CodecConfig:
    seanet = SEANetConfig(n_filters=4, dimension=16, ratios=tuple(ratios), lstm_layers=lstm, causal=causal,
                          encoder=encoder, stft_encoder=stft_encoder)
    quant = QuantizerConfig(kind=kind, dimension=16, codebook_size=codebook_size, n_q=n_q)
    cfg = CodecConfig(sample_rate=sample_rate, seanet=seanet, quantizer=quant)
    per_stage = cfg.frame_rate * cfg.bits_per_code / 1000.0
    return replace(cfg, bandwidths=tuple(round(per_stage * k, 6) for k in (1, 2, n_q)))


def tiny_model(seed: int = 0, **kw):
    """A random-weight NDVQCodec whose codebooks are drawn from its own latents (so codes vary).

    Each stage's means are random residual vectors of a noise signal, its log-variances the
    residual's log-variance per dimension plus noise, so NDVQ's scoring differs from Euclidean.
    """
    torch.manual_seed(seed)
    model = build_codec(tiny_config(**kw)).eval()
    with torch.no_grad():
        z = model.encoder(noise(32000, seed=seed + 100)[None, None] / 0.2)
        r = z.transpose(1, 2).reshape(-1, z.shape[1])
        for layer in model.quantizer.layers:
            picks = r[torch.randperm(r.shape[0])[: layer.codebook_size]]
            if hasattr(layer, "logvar"):
                layer.mu.copy_(picks + 0.01 * torch.randn_like(picks))
                layer.logvar.copy_(r.var(0).clamp_min(1e-6).log()[None] + torch.rand_like(picks) - 0.5)
            else:
                layer.embed.copy_(picks + 0.01 * torch.randn_like(picks))
            layer.initialized.fill_(True)
            r = r - layer.decode(layer.encode(r))
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


def code_diversity(codes) -> int:
    """Most distinct codes used by one stage (the tests want varied codes, not constants)."""
    return max(int(torch.unique(codes[..., k, :]).numel()) for k in range(codes.shape[-2]))


@pytest.fixture(autouse=False)
def one_thread():
    """Tiny models are ~100x slower with 2 OpenMP threads on a busy 2-core machine: use one."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
