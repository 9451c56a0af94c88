"""What a TTS validation score means: does the model use the text, and does it beat trivial baselines?

- `shuffled_text(batch)`: the same batch with every item's phonemes replaced by another item's
  (tiled or cut to the item's own length, so its durations still fit). Text gain = dev score with
  the true phonemes minus the score with these: a model that ignores the text scores the same.
- `code_baselines(train, dev, n_q)`: models that read no text, fitted on the training dump and scored
  on the same dev items as the validation: per-codebook unigram, copy the previous frame's code
  (codebook 1), a bigram of codebook 1 over time, and for the NAR the most likely code k given code
  k-1 of the same frame. A model below these has learned less than counting.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch

from .batch import TTSBatch

SMOOTHING = 0.5     # add-alpha smoothing of the count models (NLL of an unseen code stays finite)


def shuffled_text(batch: TTSBatch) -> TTSBatch:
    """Item b gets item (b + 1) % B's phonemes, repeated or cut to b's own phoneme count.

    Lengths (and durations, if any) stay those of item b, so only the identity of the text changes.
    A batch of one item has no other text: it is returned unchanged (callers skip it)."""
    B = batch.batch_size
    if B < 2:
        return batch
    ph = torch.zeros_like(batch.phonemes)
    for b in range(B):
        o = (b + 1) % B
        src = batch.phonemes[o, : int(batch.phoneme_lens[o])]
        n = int(batch.phoneme_lens[b])
        ph[b, :n] = src.repeat(math.ceil(n / src.numel()))[:n]
    return TTSBatch(ph, batch.phoneme_lens, batch.codes, batch.code_lens, batch.prompt, batch.prompt_lens,
                    batch.durations)


def _counts(codes: Iterable[np.ndarray], V: int, n_q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unigram counts [n_q, V], codebook-1 bigram counts [V, V], (k-1 -> k) same-frame counts [n_q, V, V]."""
    uni = np.zeros((n_q, V), np.int64)
    big = np.zeros((V, V), np.int64)
    cond = np.zeros((n_q, V, V), np.int64)
    for c in codes:
        c = np.asarray(c, dtype=np.int64)[:n_q]                      # [K, T]
        for k in range(c.shape[0]):
            uni[k] += np.bincount(c[k], minlength=V)
            if k:
                cond[k] += np.bincount(c[k - 1] * V + c[k], minlength=V * V).reshape(V, V)
        if c.shape[1] > 1:
            big += np.bincount(c[0, :-1] * V + c[0, 1:], minlength=V * V).reshape(V, V)
    return uni, big, cond


def _score(prob: np.ndarray, ctx: np.ndarray, tgt: np.ndarray) -> tuple[float, float]:
    """prob [C, V] (rows sum to 1), context ids, targets -> (top-1, NLL in nats)."""
    if not len(tgt):
        return float("nan"), float("nan")
    top1 = float((prob[ctx].argmax(1) == tgt).mean())
    nll = float(-np.log(prob[ctx, tgt]).mean())
    return top1, nll


def _normalise(counts: np.ndarray) -> np.ndarray:
    c = counts.astype(np.float64) + SMOOTHING
    return c / c.sum(-1, keepdims=True)


def code_baselines(train: Iterable[np.ndarray], dev: list[np.ndarray], n_q: int, V: int) -> dict:
    """Text-free baselines on the dev items (codes [K, T] each, K >= n_q), fitted on `train`.

    Returns {"codebook_1": {"unigram": {top1, nll}, "copy_previous": {top1}, "bigram": {top1, nll}},
             "codebook_k": {"unigram": ..., "given_previous_codebook": ...} for k = 2..n_q}.
    Top-1 of copy_previous counts frame 0 as a miss (nothing to copy), as the models' frame 0 is scored."""
    uni, big, cond = _counts(train, V, n_q)
    dev = [np.asarray(c, dtype=np.int64)[:n_q] for c in dev]
    out: dict = {}
    c1 = [c[0] for c in dev]
    tgt = np.concatenate(c1) if c1 else np.zeros(0, np.int64)
    p_uni = _normalise(uni[0])[None]
    t1, nll = _score(p_uni, np.zeros_like(tgt), tgt)
    copy_hits = sum(int((c[1:] == c[:-1]).sum()) for c in c1)
    prev = np.concatenate([c[:-1] for c in c1]) if c1 else tgt
    nxt = np.concatenate([c[1:] for c in c1]) if c1 else tgt
    b_t1, b_nll = _score(_normalise(big), prev, nxt)
    out["codebook_1"] = {"unigram": {"top1": t1, "nll": nll},
                         "copy_previous": {"top1": copy_hits / max(1, len(tgt))},
                         "bigram": {"top1": b_t1, "nll": b_nll}}
    for k in range(1, n_q):
        tk = np.concatenate([c[k] for c in dev]) if dev else tgt
        ctx = np.concatenate([c[k - 1] for c in dev]) if dev else tgt
        u1, un = _score(_normalise(uni[k])[None], np.zeros_like(tk), tk)
        g1, gn = _score(_normalise(cond[k]), ctx, tk)
        out[f"codebook_{k + 1}"] = {"unigram": {"top1": u1, "nll": un},
                                    "given_previous_codebook": {"top1": g1, "nll": gn}}
    return out


def baseline_table(baselines: dict) -> list[str]:
    """Markdown rows: one per codebook and baseline (top-1, NLL)."""
    lines = ["| codebook | baseline (reads no text) | top-1 | NLL (nats) |", "|---:|---|---:|---:|"]
    for key, rows in baselines.items():
        for name, v in rows.items():
            nll = v.get("nll")
            lines.append(f"| {key.split('_')[1]} | {name.replace('_', ' ')} | {v['top1']:.3f} | "
                         f"{'' if nll is None else f'{nll:.3f}'} |")
    return lines


__all__ = ["shuffled_text", "code_baselines", "baseline_table"]
