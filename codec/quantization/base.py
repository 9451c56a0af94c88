"""What every residual quantizer returns and offers: the seam the codec model relies on."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class QuantizedResult:
    x: torch.Tensor                 # [B, D, T] quantized latent (sum over stages); straight-through in training
    codes: torch.Tensor             # [B, K, T] int64 code of each stage
    loss: torch.Tensor              # scalar: the quantizer loss, mean over stages
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)   # detached scalars for logging


def usage_metrics(codes: torch.Tensor, codebook_size: int, prefix: str) -> dict[str, torch.Tensor]:
    """Code usage of one stage in one batch: perplexity (exp entropy) and unused codes.  codes: [N]"""
    counts = torch.bincount(codes.flatten(), minlength=codebook_size).float()
    probs = counts / counts.sum().clamp_min(1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum()
    return {
        f"{prefix}/perplexity": entropy.exp(),
        f"{prefix}/unused": (counts == 0).sum().float(),
    }


class Codebook(nn.Module, abc.ABC):
    """One stage: [N, D] vectors -> codes [N], and codes -> vectors."""

    codebook_size: int
    dimension: int

    @abc.abstractmethod
    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """z [N, D] -> (zq [N, D] value passed on, codes [N], stage loss, metrics)."""

    @abc.abstractmethod
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, D] -> codes [N] (inference)."""

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [N] -> vectors [N, D] (inference: the means)."""


class ResidualQuantizer(nn.Module):
    """N_q codebooks applied to successive residuals; any quantizer kind behind one interface.

    r_1 = x; stage i codes r_i; r_{i+1} = r_i - value_i (detached). The output is the sum of the stage
    values, each passed straight through (q_i = r_i + (value_i - r_i).detach()), so the encoder gets
    the reconstruction gradient and the codebooks none from it. `residual_from_mean`: subtract the
    code's vector (`decode`, the mean) instead of the value passed on (NDVQ's training sample), so
    training forms the same residuals as inference.
    """

    def __init__(self, codebooks: list[Codebook], residual_from_mean: bool = False):
        super().__init__()
        self.residual_from_mean = residual_from_mean
        self.layers = nn.ModuleList(codebooks)
        self.codebook_size = codebooks[0].codebook_size
        self.dimension = codebooks[0].dimension

    @property
    def n_q(self) -> int:
        return len(self.layers)

    def _check_n_q(self, n_q: int | None) -> int:
        n_q = self.n_q if n_q is None else n_q
        if not 1 <= n_q <= self.n_q:
            raise ValueError(f"n_q={n_q} is outside 1..{self.n_q}")
        return n_q

    def forward(self, x: torch.Tensor, n_q: int | None = None) -> QuantizedResult:
        """x [B, D, T] -> QuantizedResult with codes [B, n_q, T]."""
        n_q = self._check_n_q(n_q)
        B, D, T = x.shape
        residual = x.transpose(1, 2).reshape(B * T, D)
        out = torch.zeros_like(residual)
        codes, losses, metrics = [], [], {}
        for i, layer in enumerate(self.layers[:n_q]):
            value, idx, loss, m = layer.quantize(residual)
            q = residual + (value - residual).detach()
            out = out + q
            residual = residual - (layer.decode(idx) if self.residual_from_mean else value).detach()
            codes.append(idx)
            losses.append(loss)
            metrics.update({f"q{i}/{k}": v for k, v in m.items()})
            metrics.update(usage_metrics(idx, self.codebook_size, f"q{i}"))
        quantized = out.reshape(B, T, D).transpose(1, 2)
        codes_t = torch.stack(codes, 0).reshape(n_q, B, T).transpose(0, 1)
        return QuantizedResult(quantized, codes_t, torch.stack(losses).mean(), metrics)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """x [B, D, T] -> codes [B, n_q, T] (int64)."""
        n_q = self._check_n_q(n_q)
        B, D, T = x.shape
        residual = x.transpose(1, 2).reshape(B * T, D)
        codes = []
        for layer in self.layers[:n_q]:
            idx = layer.encode(residual)
            residual = residual - layer.decode(idx)
            codes.append(idx)
        return torch.stack(codes, 0).reshape(n_q, B, T).transpose(0, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, T] -> latent [B, D, T] (sum of the stage vectors)."""
        B, K, T = codes.shape
        if K > self.n_q:
            raise ValueError(f"codes have {K} codebooks but the quantizer has {self.n_q}")
        out = None
        for k in range(K):
            v = self.layers[k].decode(codes[:, k].reshape(-1))
            out = v if out is None else out + v
        return out.reshape(B, T, self.dimension).transpose(1, 2)
