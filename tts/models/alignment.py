"""Where each audio frame is in the text: the forced alignment both VALL-E models can read.

In training the durations come from the aligner (recipe stage 4, docs/durations.md); at synthesis from
the AR's duration planner (tts.models.decoding.plan_durations), so the AR and the NAR read the same plan.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_PROGRESS = 16          # frames-into / frames-left of a phoneme are embedded up to this (clipped)


@dataclass
class FrameAlignment:
    """Which phoneme each audio frame belongs to: phonemes [B, L] and their durations [B, L] (frames).

    Frame t of row b lies in token i when ends[b, i-1] <= t < ends[b, i]; frames past the end belong
    to the last token (the <eos> position of training, never generated)."""
    phonemes: torch.Tensor
    durations: torch.Tensor

    def __post_init__(self) -> None:
        self.ends = torch.cumsum(self.durations, dim=1)                          # [B, L]

    def at(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """frames [B, T] int64 -> (phoneme id, frames into it, frames left after it) each [B, T]."""
        L = self.ends.shape[1]
        tok = torch.searchsorted(self.ends, frames.contiguous(), right=True).clamp(max=L - 1)
        end = self.ends.gather(1, tok)
        start = end - self.durations.gather(1, tok)
        into = (frames - start).clamp(0, MAX_PROGRESS - 1)
        left = (end - 1 - frames).clamp(0, MAX_PROGRESS - 1)
        return self.phonemes.gather(1, tok), into, left

    def keep(self, rows: torch.Tensor) -> "FrameAlignment":
        return FrameAlignment(self.phonemes[rows], self.durations[rows])


def read_alignment(phonemes: torch.Tensor, durations, model: str) -> FrameAlignment:
    """The FrameAlignment of a model that reads durations (`model` names it and its setting in the error):
    durations [B, L] like phonemes [B, L], else a ValueError before any work."""
    if durations is None:
        raise ValueError(f"{model} needs phoneme durations (data.train_durations / data.valid_durations in "
                         "training, the AR's planned durations at synthesis)")
    if durations.shape != phonemes.shape:
        raise ValueError(f"{model}: durations {tuple(durations.shape)} must be [B, L] like phonemes "
                         f"{tuple(phonemes.shape)}")
    return FrameAlignment(phonemes, durations.long())


__all__ = ["MAX_PROGRESS", "FrameAlignment", "read_alignment"]
