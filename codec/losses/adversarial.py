"""Adversarial losses of the spec (EnCodec's): hinge losses and relative feature matching."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_generator_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """mean_k relu(1 - D_k(x_hat))"""
    return torch.stack([F.relu(1 - lg).mean() for lg in fake_logits]).mean()


def hinge_discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """mean_k [relu(1 - D_k(x)) + relu(1 + D_k(x_hat))]"""
    return torch.stack([F.relu(1 - r).mean() + F.relu(1 + f).mean()
                        for r, f in zip(real_logits, fake_logits)]).mean()


def feature_matching_loss(real_features: list[list[torch.Tensor]],
                          fake_features: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean over scales and layers of mean|f_real - f_fake| / mean|f_real| (real features detached)."""
    terms = []
    for real_scale, fake_scale in zip(real_features, fake_features):
        for r, f in zip(real_scale, fake_scale):
            r = r.detach()
            terms.append((r - f).abs().mean() / r.abs().mean().clamp_min(1e-8))
    return torch.stack(terms).mean()
