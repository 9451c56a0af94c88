"""The harmonic source's training loss (codec/models/harmonic.py): F0 classes and voicing against the tracker.

    L = f0 * CE(F0 class logits, Gaussian targets at the tracker's F0)   on frames the tracker calls voiced
      + voicing * BCE(voicing logit, the tracker's voicing)              on every frame

Classes over log-spaced bins, not a regression on log F0: in the feasibility runs (docs/codec_pitch.md) the
regression left female voices 164 cents low; the classes did not.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.harmonic import F0Bins


class PitchLoss(nn.Module):
    def __init__(self, bins: int, f0_min: float, f0_max: float, sigma: float, f0_weight: float,
                 voicing_weight: float):
        super().__init__()
        self.bins, self.sigma = F0Bins(bins, f0_min, f0_max), sigma
        self.f0_weight, self.voicing_weight = f0_weight, voicing_weight

    def forward(self, pitch, f0: torch.Tensor) -> dict[str, torch.Tensor]:
        """pitch: PitchOutput (f0_logits [B, T, bins], voicing_logits [B, T]); f0 [B, T] Hz, 0 = unvoiced.
        Returns {"pitch": the weighted sum, "f0_ce", "voicing_bce", "f0_acc": share of voiced frames whose
        argmax bin is within one bin of the target}."""
        T = min(pitch.f0_logits.shape[1], f0.shape[1])
        logits, v_logits, f0 = pitch.f0_logits[:, :T].float(), pitch.voicing_logits[:, :T].float(), f0[:, :T].float()
        voiced = f0 > 0
        zero = logits.new_zeros(())
        if voiced.any():
            target = self.bins.soft_targets(f0[voiced], self.sigma)
            ce = -(target * F.log_softmax(logits[voiced], -1)).sum(-1).mean()
            hit = (logits[voiced].argmax(-1).float() - self.bins.position(f0[voiced])).abs() <= 1.0
            acc = hit.float().mean()
        else:
            ce, acc = zero, zero
        bce = F.binary_cross_entropy_with_logits(v_logits, voiced.float())
        total = self.f0_weight * ce + self.voicing_weight * bce
        return {"pitch": total, "f0_ce": ce.detach(), "voicing_bce": bce.detach(), "f0_acc": acc.detach()}
