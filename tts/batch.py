"""The one batch type both TTS models train on (built by tts/data.py).

Layout: phonemes [B, L] padded with 0 (<pad>), codes [B, K, T] and prompt [B, K, P] padded with any
value (positions beyond the lengths are masked by the models). In `prefix` prompt mode the AR gets
the whole utterance as `codes` and `prompt_lens = 0`; the NAR gets prompt = codes[:, :, :p] and
codes = the rest (phonemes are the whole utterance's).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional, Union

import torch


@dataclass
class TTSBatch:
    phonemes: torch.Tensor      # [B, L] int64 phoneme ids, padded with 0
    phoneme_lens: torch.Tensor  # [B] int64
    codes: torch.Tensor         # [B, K, T] int64 target codes (K = the model's n_q or more), padded
    code_lens: torch.Tensor     # [B] int64
    prompt: torch.Tensor        # [B, K, P] int64 acoustic prompt codes (NAR), padded
    prompt_lens: torch.Tensor   # [B] int64 (0 allowed)
    # [B, L] int64 code frames of each phoneme token (forced alignment, docs/durations.md), padded with
    # 0; row b sums to code_lens[b] (AR with model.ar_alignment = "durations"; whole utterance).
    durations: Optional[torch.Tensor] = None
    # [B] int64 each item's index in its TTSDataset (set by tts.data.collate): lets the validation fetch
    # another utterance of the same or another speaker for the prompt gain (tts/prompt_gain.py)
    index: Optional[torch.Tensor] = None

    def to(self, device: Union[str, torch.device]) -> "TTSBatch":
        return TTSBatch(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                           for f in fields(self)})

    @property
    def batch_size(self) -> int:
        return int(self.phonemes.shape[0])

    def validate(self, n_q: int) -> None:
        """ValueError naming the field if shapes or lengths are inconsistent (cheap; called by the models)."""
        B = self.phonemes.shape[0]
        if self.phonemes.dim() != 2:
            raise ValueError(f"TTSBatch.phonemes must be [B, L], got {tuple(self.phonemes.shape)}")
        for name, shape in (("codes", self.codes.shape), ("prompt", self.prompt.shape)):
            if len(shape) != 3 or shape[0] != B:
                raise ValueError(f"TTSBatch.{name} must be [B={B}, K, T], got {tuple(shape)}")
        if self.codes.shape[1] < n_q:
            raise ValueError(f"TTSBatch.codes has {self.codes.shape[1]} codebooks; the model needs {n_q}")
        for name in ("phoneme_lens", "code_lens", "prompt_lens"):
            t = getattr(self, name)
            if t.shape != (B,):
                raise ValueError(f"TTSBatch.{name} must be [B={B}], got {tuple(t.shape)}")
        if int(self.phoneme_lens.min()) < 1:
            raise ValueError("TTSBatch.phoneme_lens: every item needs at least one phoneme")
        if int(self.phoneme_lens.max()) > self.phonemes.shape[1] or int(self.code_lens.max()) > self.codes.shape[2] \
                or (B and int(self.prompt_lens.max()) > self.prompt.shape[2]):
            raise ValueError("TTSBatch: a length exceeds its padded tensor")
        if self.durations is not None:
            if self.durations.shape != self.phonemes.shape:
                raise ValueError(f"TTSBatch.durations must be [B, L] like phonemes {tuple(self.phonemes.shape)}, "
                                 f"got {tuple(self.durations.shape)}")
            if int(self.durations.min()) < 0 or not torch.equal(self.durations.sum(1), self.code_lens + self.prompt_lens):
                raise ValueError("TTSBatch.durations: every row must be >= 0 and sum to its code frames")


__all__ = ["TTSBatch"]
