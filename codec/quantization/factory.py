"""build_quantizer: a QuantizerConfig -> the residual quantizer of its kind."""
from __future__ import annotations

from ..config import QuantizerConfig
from .base import ResidualQuantizer
from .ndvq import NormalCodebook
from .rvq import EuclideanCodebook

CODEBOOKS = {"ndvq": NormalCodebook, "rvq": EuclideanCodebook}


def build_quantizer(cfg: QuantizerConfig) -> ResidualQuantizer:
    if cfg.kind not in CODEBOOKS:
        raise ValueError(f"unknown quantizer kind {cfg.kind!r}; choose one of {sorted(CODEBOOKS)}")
    return ResidualQuantizer([CODEBOOKS[cfg.kind](cfg) for _ in range(cfg.n_q)],
                             residual_from_mean=cfg.ndvq_residual == "mean")
