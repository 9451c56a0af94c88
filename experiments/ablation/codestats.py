"""Code statistics of a trained codec per stage, on the clean evaluation utterances at full depth.

Per stage k (residual r_k entering the stage, chosen code c):
- used codes and perplexity (exp of the code entropy; `quantization.base.usage_metrics`),
- distance of the residual to its chosen code: mean over frames of RMS(r_k - value(c)) over dims,
  and the same relative to the RMS of r_k (1.0 = the stage removed nothing),
- NDVQ only: sigma = exp(0.5 * logvar) of the used codes (all their dims): quantiles, and the median
  relative to the std of the residual entering the stage (sigma far above it = the sample is mostly noise),
- the sorted code counts (for the usage histograms).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

from codec.quantization.base import usage_metrics

SIGMA_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class StageStats:
    stage: int
    codes_used: int
    perplexity: float
    distance: float                  # mean RMS(r - code) over frames
    distance_rel: float              # distance / mean RMS(r)
    sigma_quantiles: Optional[list[float]] = None     # NDVQ: SIGMA_QUANTILES of sigma over used codes
    sigma_rel_median: Optional[float] = None          # NDVQ: median sigma / std of the stage's residual
    counts_sorted: list[int] = field(default_factory=list)


@torch.no_grad()
def stage_stats(quantizer, zs: Sequence[torch.Tensor]) -> list[StageStats]:
    """Statistics of every stage of `quantizer` (a ResidualQuantizer in eval mode) over latents zs [1, D, T_i]."""
    r = torch.cat([z[0].transpose(0, 1) for z in zs], dim=0).float()          # [frames, D]
    out = []
    for k, layer in enumerate(quantizer.layers):
        codes = layer.encode(r)
        value = layer.decode(codes)
        use = usage_metrics(codes, layer.codebook_size, "s")
        err = (r - value).pow(2).mean(1).sqrt()                                 # [frames]
        r_rms = r.pow(2).mean(1).sqrt()
        counts = torch.bincount(codes, minlength=layer.codebook_size)
        st = StageStats(k + 1, int((counts > 0).sum()), float(use["s/perplexity"]), float(err.mean()),
                        float(err.mean() / r_rms.mean().clamp_min(1e-12)),
                        counts_sorted=sorted(counts.tolist(), reverse=True))
        if hasattr(layer, "logvar"):
            sigma = torch.exp(0.5 * layer.logvar.detach().float())[counts > 0].flatten()
            st.sigma_quantiles = torch.quantile(sigma, torch.tensor(SIGMA_QUANTILES)).tolist()
            st.sigma_rel_median = float(sigma.median() / r.std().clamp_min(1e-12))
        out.append(st)
        r = r - value
    return out
