"""Residual quantizers: NDVQ (normal-distribution codebooks) and the EnCodec RVQ baseline.

    base.py      Codebook, ResidualQuantizer, QuantizedResult, usage metrics
    ndvq.py      NormalCodebook (NDVQ) and its Gaussian log-likelihood scores
    rvq.py       EuclideanCodebook (EnCodec's RVQ: EMA updates, dead-code replacement)
    kmeans.py    the k-means initialisation both share
    factory.py   build_quantizer: a QuantizerConfig -> the quantizer of its kind

Names are imported on first use (PEP 562).
"""
from __future__ import annotations

from core.lazy import lazy_face

_EXPORTS = {
    "Codebook": "base", "QuantizedResult": "base", "ResidualQuantizer": "base",
    "NormalCodebook": "ndvq", "gaussian_log_likelihood_scores": "ndvq",
    "EuclideanCodebook": "rvq",
    "build_quantizer": "factory", "CODEBOOKS": "factory",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS)
