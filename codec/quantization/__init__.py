"""Residual quantizers: NDVQ (normal-distribution codebooks) and the EnCodec RVQ baseline."""
from ..config import QuantizerConfig
from .base import Codebook, QuantizedResult, ResidualQuantizer
from .ndvq import NormalCodebook, gaussian_log_likelihood_scores
from .rvq import EuclideanCodebook

CODEBOOKS = {"ndvq": NormalCodebook, "rvq": EuclideanCodebook}


def build_quantizer(cfg: QuantizerConfig) -> ResidualQuantizer:
    if cfg.kind not in CODEBOOKS:
        raise ValueError(f"unknown quantizer kind {cfg.kind!r}; choose one of {sorted(CODEBOOKS)}")
    return ResidualQuantizer([CODEBOOKS[cfg.kind](cfg) for _ in range(cfg.n_q)],
                             residual_from_mean=cfg.ndvq_residual == "mean")


__all__ = ["Codebook", "QuantizedResult", "ResidualQuantizer", "NormalCodebook", "EuclideanCodebook",
           "gaussian_log_likelihood_scores", "build_quantizer"]
