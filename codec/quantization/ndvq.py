"""Normal-distribution codebooks (NDVQ): every code is a diagonal Gaussian N(mu_k, diag(exp(logvar_k))).

Selection picks the most likely Gaussian,
    k* = argmax_k  sum_d [ -(z_d - mu_kd)^2 / (2 sigma_kd^2) - logvar_kd / 2 ],
expanded into matmuls on detached parameters (never an [N, K, D] tensor):
    -1/2 z^2 @ (1/sigma^2)^T  +  z @ (mu/sigma^2)^T  -  1/2 sum_d (mu^2/sigma^2 + logvar).
Training passes a reparameterised sample mu + sigma * eps of the chosen Gaussian on (straight through
in ResidualQuantizer); evaluation and inference pass the mean.

Departures from the authors' code, each a config switch (QuantizerConfig):
- `logvar_init="kmeans"` (default) starts every code's log-variance at the within-cluster spread of
  the k-means init, pooled over clusters; the authors' `"zero"` (sigma = 1) collapsed codebooks at small
  scale, and a per-cluster spread from ~2 points let the log-determinant decide selection (README).
- `ndvq_dead_code_reset` (off by default, as the authors) re-seeds codes whose usage, an EMA over steps,
  falls below `dead_code_threshold`.
- k-means initialisation runs on rank 0 and is broadcast, so every rank starts identical.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import QuantizerConfig
from core import distrib
from .base import Codebook
from .kmeans import cluster_variance, kmeans, pooled_variance


def gaussian_log_likelihood_scores(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of each z under each code, up to a constant.  z [N, D], mu/logvar [K, D] -> [N, K]."""
    inv_var = torch.exp(-logvar)                                   # [K, D]
    const = -0.5 * ((mu * mu * inv_var).sum(1) + logvar.sum(1))   # [K]
    return torch.addmm(const[None], z, (mu * inv_var).t()) - 0.5 * (z * z) @ inv_var.t()


class NormalCodebook(Codebook):
    def __init__(self, cfg: QuantizerConfig):
        super().__init__()
        self.cfg = cfg
        self.codebook_size = cfg.codebook_size
        self.dimension = cfg.dimension
        self.mu = nn.Parameter(torch.randn(cfg.codebook_size, cfg.dimension) * 0.1)
        self.logvar = nn.Parameter(torch.zeros(cfg.codebook_size, cfg.dimension))
        self.register_buffer("initialized", torch.tensor(False))
        if cfg.ndvq_dead_code_reset:
            # EMA of each code's uses per step (summed over ranks): raw per-batch counts are too noisy at
            # small batches (~2.4 uses a code a step in the mini config re-seeded a third of the
            # codebook every step even under uniform use).
            self.register_buffer("usage", torch.zeros(cfg.codebook_size))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Models saved before the usage EMA existed load as they are. Usage only matters in training: it
        # restarts at 4x the threshold, so an unused code is re-seeded after ~log(4)/(1-decay) steps,
        # not every code at once on the first step.
        if hasattr(self, "usage") and prefix + "usage" not in state_dict:
            state_dict[prefix + "usage"] = torch.full_like(self.usage, 4 * self.cfg.dead_code_threshold)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- initialisation and maintenance ---------------------------------------------------------
    @torch.no_grad()
    def _init_from(self, z: torch.Tensor) -> None:
        if distrib.rank() == 0:
            centroids, assign = kmeans(z, self.codebook_size, self.cfg.kmeans_iters)
            self.mu.data.copy_(centroids)
            if self.cfg.logvar_init == "kmeans":
                self.logvar.data.copy_(pooled_variance(z, centroids, assign).log()[None].expand_as(self.logvar))
            elif self.cfg.logvar_init == "kmeans_per_code":
                self.logvar.data.copy_(cluster_variance(z, centroids, assign).log())
            else:
                self.logvar.data.zero_()
            if self.cfg.ndvq_dead_code_reset:
                self.usage.copy_(torch.bincount(assign, minlength=self.codebook_size).float())
        distrib.broadcast_(self.mu, self.logvar)
        if self.cfg.ndvq_dead_code_reset:
            distrib.broadcast_(self.usage)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _reset_dead_codes(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        counts = torch.bincount(codes, minlength=self.codebook_size).float()
        distrib.all_reduce_sum_(counts)
        self.usage.mul_(self.cfg.ema_decay).add_(counts, alpha=1 - self.cfg.ema_decay)
        dead = self.usage < self.cfg.dead_code_threshold
        if not dead.any():
            return
        # Rank 0 draws the replacements from its batch; every rank receives the same rows.
        picks = z[torch.randint(0, z.shape[0], (self.codebook_size,), device=z.device)]
        distrib.broadcast_(picks)
        live_logvar = self.logvar.data[~dead].mean(0) if (~dead).any() else self.logvar.data.mean(0)
        self.mu.data[dead] = picks[dead].to(self.mu.dtype)
        self.logvar.data[dead] = live_logvar.to(self.logvar.dtype)
        self.usage[dead] = self.cfg.dead_code_threshold     # a grace period to be picked before the next reset

    # -- the quantizer ---------------------------------------------------------------------------
    def select(self, z: torch.Tensor) -> torch.Tensor:
        """Most likely code for each row of z [N, D] -> [N]; no gradient through the choice."""
        with torch.no_grad():
            scores = gaussian_log_likelihood_scores(z.float(), self.mu.detach().float(), self.logvar.detach().float())
            return scores.argmax(1)

    def quantize(self, z: torch.Tensor):
        if self.training and not bool(self.initialized):
            self._init_from(z.detach().float())
        codes = self.select(z)
        mu = F.embedding(codes, self.mu)
        logvar = F.embedding(codes, self.logvar)
        if self.training:
            value = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        else:
            value = mu
        cfg = self.cfg
        loss = F.mse_loss(z, mu.detach()) + cfg.codebook_weight * F.mse_loss(z.detach(), mu)
        var2 = torch.exp(2 * logvar)                     # (sigma^2)^2 of every selected entry
        penalty = var2.sum() if cfg.sigma_penalty_reduction == "sum" else var2.mean()
        loss = loss + cfg.sigma_penalty * penalty
        if cfg.sample_weight > 0 and self.training:
            loss = loss + cfg.sample_weight * F.mse_loss(value, z.detach())
        if self.training and cfg.ndvq_dead_code_reset:
            self._reset_dead_codes(z.detach(), codes)
        with torch.no_grad():
            sigma = torch.exp(0.5 * self.logvar.detach())
            metrics = {"sigma_mean": sigma.mean(), "sigma_selected": torch.exp(0.5 * logvar.detach()).mean(),
                       "latent_std": z.detach().std()}
        return value, codes, loss, metrics

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        return self.select(z)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.mu)
