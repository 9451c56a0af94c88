"""Token sampling for the AR (the NAR is greedy): temperature, top-k, top-p, repetition guard,
and the length bounds that stop a model that never emits <eos>.

Every sequence has its own torch.Generator, so a sequence's samples do not depend on what else is
in the batch: batched decoding equals one-by-one decoding with the same seeds (up to float
rounding of the logits, which we test).

Repetition guard (VALL-E 2's repetition-aware sampling, CosyVoice's defaults): sample from the
top-k / top-p filtered distribution; if the sampled token already occurs at least
`repetition_window * repetition_tau` times among the last `repetition_window` generated tokens,
sample again from the whole (temperature-scaled) distribution instead. This breaks the loops
(repeated or stuck frames) that pure nucleus sampling falls into, while keeping nucleus sampling's
quality elsewhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch


@dataclass
class SamplingConfig:
    temperature: float = 1.0         # AR; 0 = greedy (argmax)
    top_k: int = 25                  # 0 = off
    top_p: float = 0.8               # 1.0 = off
    repetition_window: int = 10      # 0 = no repetition guard
    repetition_tau: float = 0.1
    # length bounds: expected frames = target phonemes x the prompt's frames per phoneme
    min_length_factor: float = 0.5   # <eos> is not allowed before this fraction of the expected length
    max_length_factor: float = 2.0   # decoding stops here even without <eos>
    max_seconds: float = 40.0        # absolute cap per sentence
    default_phonemes_per_second: float = 14.0   # speaking rate when the prompt has no audio
    speed: float = 1.0               # AR with durations: speaking rate relative to the prompt's (2 = twice as fast)
    seed: Optional[int] = None       # None: a fresh random seed, reported in the result

    def __post_init__(self) -> None:
        checks = [(self.temperature >= 0, "temperature must be >= 0"),
                  (self.top_k >= 0, "top_k must be >= 0"),
                  (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
                  (self.repetition_window >= 0, "repetition_window must be >= 0"),
                  (self.repetition_tau >= 0, "repetition_tau must be >= 0"),
                  (0 <= self.min_length_factor <= self.max_length_factor,
                   "need 0 <= min_length_factor <= max_length_factor"),
                  (self.max_seconds > 0, "max_seconds must be > 0"),
                  (self.default_phonemes_per_second > 0, "default_phonemes_per_second must be > 0"),
                  (0.25 <= self.speed <= 4, "speed must be in [0.25, 4]")]
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise ValueError("SamplingConfig: " + "; ".join(bad))


def length_bounds(target_phonemes: int, prompt_frames: int, prompt_phonemes: int, frame_rate: float,
                  cfg: SamplingConfig) -> tuple[int, int]:
    """(min_frames, max_frames) to generate for `target_phonemes` phoneme tokens.

    The speaking rate is the prompt's frames per phoneme token (falls back to
    cfg.default_phonemes_per_second when the prompt has no audio or no text).
    """
    if prompt_frames > 0 and prompt_phonemes > 0:
        per_phoneme = prompt_frames / prompt_phonemes
    else:
        per_phoneme = frame_rate / cfg.default_phonemes_per_second
    expected = per_phoneme * max(1, target_phonemes)
    cap = max(1, int(cfg.max_seconds * frame_rate))
    hi = min(cap, max(1, math.ceil(cfg.max_length_factor * expected)))
    lo = min(hi - 1, int(cfg.min_length_factor * expected))
    return max(0, lo), hi


def make_generator(seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
    return g


def derive_seed(seed: int, *path: int) -> int:
    """A per-item/per-sentence seed from a base seed (stable across runs and platforms)."""
    s = int(seed) & 0xFFFF_FFFF_FFFF_FFFF
    for p in path:
        s = (s * 6364136223846793005 + 1442695040888963407 + int(p) * 0x9E3779B97F4A7C15) & 0xFFFF_FFFF_FFFF_FFFF
    return s


def _filter(logits: torch.Tensor, top_k: int, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [B, V] -> (candidate logits [B, C] sorted descending with -inf for dropped, ids [B, C])."""
    V = logits.shape[-1]
    k = V if top_k <= 0 else min(top_k, V)
    vals, ids = torch.topk(logits, k, dim=-1)                      # sorted descending
    if top_p < 1.0:
        probs = torch.softmax(vals, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs                 # mass of the better candidates
        vals = vals.masked_fill(before >= top_p, float("-inf"))      # the first candidate always stays
    return vals, ids


def sample_tokens(logits: torch.Tensor, generators: Sequence[torch.Generator], cfg: SamplingConfig,
                  history: Optional[Sequence[Sequence[int]]] = None,
                  allow_eos: Optional[torch.Tensor] = None, eos_id: Optional[int] = None,
                  temperature: Optional[float] = None) -> torch.Tensor:
    """One token per row of logits [B, V] (float32, on CPU), each row drawn with its own generator.

    history[b]: the tokens this row generated so far (for the repetition guard); allow_eos [B]:
    rows where eos_id may be drawn (masked to -inf elsewhere). Returns int64 [B].
    """
    temp = cfg.temperature if temperature is None else temperature
    logits = logits.float().cpu()
    if allow_eos is not None and eos_id is not None and not bool(allow_eos.all()):
        logits = logits.clone()
        logits[~allow_eos.cpu(), eos_id] = float("-inf")
    if temp == 0:
        return logits.argmax(-1)
    logits = logits / temp
    vals, ids = _filter(logits, cfg.top_k, cfg.top_p)
    probs = torch.softmax(vals, dim=-1)
    out = torch.empty(logits.shape[0], dtype=torch.long)
    need = max(1, math.ceil(cfg.repetition_window * cfg.repetition_tau))
    for b, g in enumerate(generators):
        tok = int(ids[b, torch.multinomial(probs[b], 1, generator=g)])
        if cfg.repetition_window > 0 and history is not None:
            recent = history[b][-cfg.repetition_window:]
            if sum(1 for t in recent if t == tok) >= need:
                # repetition-aware fallback: draw from the whole distribution instead
                tok = int(torch.multinomial(torch.softmax(logits[b], -1), 1, generator=g))
        out[b] = tok
    return out


__all__ = ["SamplingConfig", "length_bounds", "make_generator", "derive_seed", "sample_tokens"]
