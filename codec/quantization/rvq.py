"""EnCodec's residual VQ baseline: Euclidean nearest code, EMA codebook, dead-code replacement.

Behind the same `Codebook` interface as NDVQ, so an ablation swaps the quantizer and nothing else.
EMA statistics are summed over ranks and replacements are drawn on rank 0, so every rank keeps an
identical codebook.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import QuantizerConfig
from core import distrib
from .base import Codebook
from .kmeans import kmeans


class EuclideanCodebook(Codebook):
    def __init__(self, cfg: QuantizerConfig):
        super().__init__()
        self.cfg = cfg
        self.codebook_size = cfg.codebook_size
        self.dimension = cfg.dimension
        K, D = cfg.codebook_size, cfg.dimension
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("embed", torch.randn(K, D) * 0.1)
        self.register_buffer("embed_avg", self.embed.clone())
        self.register_buffer("cluster_size", torch.zeros(K))

    @torch.no_grad()
    def _init_from(self, z: torch.Tensor) -> None:
        if distrib.rank() == 0:
            centroids, assign = kmeans(z, self.codebook_size, self.cfg.kmeans_iters)
            self.embed.copy_(centroids)
            self.embed_avg.copy_(centroids)
            self.cluster_size.copy_(torch.bincount(assign, minlength=self.codebook_size).float())
        distrib.broadcast_(self.embed, self.embed_avg, self.cluster_size)
        self.initialized.fill_(True)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code of each row of z [N, D] -> [N]."""
        with torch.no_grad():
            embed = self.embed.float()
            dist = torch.addmm(embed.pow(2).sum(1)[None], z.float(), embed.t(), alpha=-2)
            return dist.argmin(1)

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        cfg = self.cfg
        counts = torch.bincount(codes, minlength=self.codebook_size).float()
        sums = torch.zeros_like(self.embed).index_add_(0, codes, z.float())
        distrib.all_reduce_sum_(counts)
        distrib.all_reduce_sum_(sums)
        self.cluster_size.mul_(cfg.ema_decay).add_(counts, alpha=1 - cfg.ema_decay)
        self.embed_avg.mul_(cfg.ema_decay).add_(sums, alpha=1 - cfg.ema_decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + cfg.epsilon) / (n + self.codebook_size * cfg.epsilon) * n
        self.embed.copy_(self.embed_avg / smoothed[:, None])

    @torch.no_grad()
    def _replace_dead_codes(self, z: torch.Tensor) -> None:
        dead = self.cluster_size < self.cfg.dead_code_threshold
        if not dead.any():
            return
        picks = z[torch.randint(0, z.shape[0], (self.codebook_size,), device=z.device)].float()
        distrib.broadcast_(picks)
        # embed = embed_avg / cluster_size, so the running sum must be pick * count: with embed_avg = pick
        # and cluster_size = threshold the EMA of the same step put the code at pick / threshold (half
        # its pick at threshold 2), where no vector was near it, and it died again.
        thr = self.cfg.dead_code_threshold
        self.embed[dead] = picks[dead]
        self.embed_avg[dead] = picks[dead] * thr
        self.cluster_size[dead] = thr

    def quantize(self, z: torch.Tensor):
        if self.training:
            if not bool(self.initialized):
                self._init_from(z.detach().float())
            self._replace_dead_codes(z.detach())
        codes = self.nearest(z)
        value = F.embedding(codes, self.embed).to(z.dtype)
        loss = self.cfg.commitment_weight * F.mse_loss(z, value.detach())
        if self.training:
            self._ema_update(z.detach(), codes)
        return value, codes, loss, {"latent_std": z.detach().std()}

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        return self.nearest(z)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.embed)
