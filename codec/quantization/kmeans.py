"""k-means used to initialise codebooks on the first training batch."""
from __future__ import annotations

import torch


@torch.no_grad()
def kmeans(samples: torch.Tensor, k: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means.  samples [N, D] -> (centroids [k, D], assignment [N]).

    Initial centroids are k samples drawn without replacement (with replacement when N < k); an
    empty cluster keeps its previous centroid. Uses the global torch RNG, so a seeded run repeats.
    """
    samples = samples.float()
    n = samples.shape[0]
    if n >= k:
        idx = torch.randperm(n, device=samples.device)[:k]
    else:
        idx = torch.randint(0, n, (k,), device=samples.device)
    centroids = samples[idx].clone()
    assign = torch.zeros(n, dtype=torch.long, device=samples.device)
    for _ in range(iters):
        dist = (samples.pow(2).sum(1, keepdim=True) - 2 * samples @ centroids.t()
                + centroids.pow(2).sum(1)[None])
        assign = dist.argmin(1)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assign, samples)
        nonempty = counts > 0
        centroids[nonempty] = sums[nonempty] / counts[nonempty, None].float()
    return centroids, assign


@torch.no_grad()
def pooled_variance(samples: torch.Tensor, centroids: torch.Tensor, assign: torch.Tensor,
                    floor: float = 1e-4) -> torch.Tensor:
    """Within-cluster variance pooled over all clusters, per dimension [D].

    Every sample counts once, so the estimate stays good however few points a cluster has (with
    K = 256 codes and ~600 vectors a batch most clusters hold 1-3 points, too few for a variance of
    their own).
    """
    diff2 = (samples.float() - centroids[assign]).pow(2)
    return diff2.mean(0).clamp_min(floor)


@torch.no_grad()
def cluster_variance(samples: torch.Tensor, centroids: torch.Tensor, assign: torch.Tensor,
                     floor: float = 1e-4) -> torch.Tensor:
    """Per-cluster, per-dimension variance around the centroid [k, D].

    Clusters with fewer than two members get the mean variance of the others (or of all samples),
    so every code starts with a spread on the scale of the data.
    """
    k, d = centroids.shape
    diff2 = (samples.float() - centroids[assign]).pow(2)
    counts = torch.bincount(assign, minlength=k).float()
    sums = torch.zeros(k, d, device=samples.device).index_add_(0, assign, diff2)
    var = sums / counts.clamp_min(1)[:, None]
    good = counts >= 2
    fallback = var[good].mean(0) if good.any() else samples.float().var(0, unbiased=False)
    var[~good] = fallback
    return var.clamp_min(floor)
