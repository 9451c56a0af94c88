"""What a TTS validation score means: does the model use the text, and does it beat trivial baselines?

- `shuffled_text(batch)`: the same batch with every item's phonemes replaced by another item's
  (tiled or cut to the item's own length, so its durations still fit). Text gain = dev score with
  the true phonemes minus the score with these: a model that ignores the text scores the same.
- `code_baselines(train, dev, n_q)`: models that read no text, fitted on the training dump and scored
  on the same dev items as the validation: per-codebook unigram, copy the previous frame's code
  (codebook 1), a bigram of codebook 1 over time, and for the NAR the most likely code k given code
  k-1 of the same frame. A model below these has learned less than counting.
- `ar_attention(model, batch)`: the AR's audio-to-phoneme attention per layer (heads averaged), with
  `monotonicity` (rank correlation of frame index and attended phoneme) and, given durations, the
  share of frames attending to their own phoneme; `plot_attention` draws them.
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


def count_codes(codes: Iterable[np.ndarray], V: int, n_q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    uni, big, cond = count_codes(train, V, n_q)
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


MIX_WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def prompt_mixture_baselines(train: Iterable[np.ndarray], items: list[tuple[np.ndarray, np.ndarray]], n_q: int,
                             V: int) -> dict:
    """The NAR's prompt-aware count model: lam * p(code k | code k-1 of the frame) + (1 - lam) * the prompt's
    own codebook-k unigram, scored on the targets of `items` ([(prompt [K, P], target [K, T])]).

    lam is the best of MIX_WEIGHTS on these same dev items (which flatters the baseline: a model that
    beats it beats every weight). {"codebook_k": {"given_previous_codebook_and_prompt": {top1, nll, weight}}}."""
    _, _, cond = count_codes(train, V, n_q)
    out: dict = {}
    for k in range(1, n_q):
        p_cond = _normalise(cond[k])
        rows, prompt_uni = [], []
        for prompt, tgt in items:
            if prompt.shape[1] == 0 or tgt.shape[1] == 0:
                continue
            rows.append((tgt[k - 1], tgt[k]))
            prompt_uni.append(np.bincount(prompt[k], minlength=V) / prompt.shape[1])
        if not rows:
            continue
        best = None
        for lam in MIX_WEIGHTS:
            hits, nll, n = 0, 0.0, 0
            for (ctx, t), u in zip(rows, prompt_uni):
                prob = lam * p_cond[ctx] + (1 - lam) * u[None, :]
                hits += int((prob.argmax(1) == t).sum())
                nll -= float(np.log(prob[np.arange(len(t)), t]).sum())
                n += len(t)
            if best is None or nll / n < best["nll"]:
                best = {"top1": hits / n, "nll": nll / n, "weight": lam}
        out[f"codebook_{k + 1}"] = {"given_previous_codebook_and_prompt": best}
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


@torch.no_grad()
def ar_attention(model, batch: TTSBatch) -> list[torch.Tensor]:
    """Audio-to-text attention of item 0 of `batch` in every layer: [n_layers] of [T, L] (heads averaged).

    Row t is audio position t (input <bos> c_1 .. c_t, predicting frame t); columns are the phonemes."""
    from .models.transformer import SelfAttention
    attns = [m for m in model.modules() if isinstance(m, SelfAttention)]
    L, T = int(batch.phoneme_lens[0]), int(batch.code_lens[0])
    one = TTSBatch(batch.phonemes[:1, :L], batch.phoneme_lens[:1], batch.codes[:1, :, :T], batch.code_lens[:1],
                   batch.prompt[:1, :, :0], batch.prompt_lens[:1] * 0,
                   None if batch.durations is None else batch.durations[:1, :L])
    was = model.training
    model.eval()
    for a in attns:
        a.captured = []
    try:
        model(one)
        maps = [a.captured[0][0].mean(0)[L:L + T, :L].float().cpu() for a in attns]   # text first, then audio
    finally:
        for a in attns:
            a.captured = None
        model.train(was)
    return maps


def monotonicity(att: torch.Tensor) -> float:
    """Spearman rank correlation between frame index and the most attended phoneme ([T, L] map): 1 = a
    perfectly monotonic (diagonal) alignment, about 0 = attention unrelated to time."""
    if att.shape[0] < 3:
        return float("nan")
    focus = att.argmax(1).numpy()
    # average ranks of ties (many frames attend to the same phoneme)
    _, inverse, counts = np.unique(focus, return_inverse=True, return_counts=True)
    b = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    a = np.arange(len(focus), dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float((a * b).sum()) / den if den else 0.0


def own_phoneme_share(att: torch.Tensor, durations: torch.Tensor) -> float:
    """Share of frames whose most attended phoneme is their own (forced alignment durations [L])."""
    own = torch.repeat_interleave(torch.arange(durations.numel()), durations.long().cpu())
    n = min(len(own), att.shape[0])
    return float((att[:n].argmax(1) == own[:n]).double().mean()) if n else float("nan")


def attention_summary(model, batches: list[TTSBatch], n_items: int = 4) -> tuple[dict, list]:
    """Monotonicity (best layer, mean over the first n_items dev utterances) and the maps of those items."""
    items = []
    for b in batches:
        for i in range(b.batch_size):
            items.append(TTSBatch(*(None if t is None else t[i:i + 1] for t in (
                b.phonemes, b.phoneme_lens, b.codes, b.code_lens, b.prompt, b.prompt_lens, b.durations))))
            if len(items) == n_items:
                break
        if len(items) == n_items:
            break
    per_item = []
    for it in items:
        maps = ar_attention(model, it)
        mono = [monotonicity(m) for m in maps]
        own = [own_phoneme_share(m, it.durations[0, : int(it.phoneme_lens[0])]) for m in maps] \
            if it.durations is not None else None
        per_item.append((maps, mono, own))
    if not per_item:
        return {}, []
    n_layers = len(per_item[0][1])
    mono_l = [float(np.nanmean([p[1][li] for p in per_item])) for li in range(n_layers)]
    best = int(np.nanargmax(mono_l))
    res = {"monotonicity": mono_l[best], "monotonicity_layer": best + 1}
    if per_item[0][2] is not None:
        res["own_phoneme_attention"] = float(np.nanmean([p[2][best] for p in per_item]))
    return res, [(p[0][best], p[1][best]) for p in per_item]


def plot_attention(maps: list, path, title: str) -> None:
    """One panel per item: the audio-to-phoneme attention map of the most monotonic layer."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.0), squeeze=False)
    for ax, (m, mono) in zip(axes[0], maps):
        ax.imshow(m.T.numpy(), origin="lower", aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set_xlabel("audio frame"), ax.set_ylabel("phoneme")
        ax.set_title(f"monotonicity {mono:.2f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


__all__ = ["count_codes", "SMOOTHING", "shuffled_text", "code_baselines", "prompt_mixture_baselines", "baseline_table", "ar_attention", "monotonicity",
           "own_phoneme_share", "attention_summary", "plot_attention"]
