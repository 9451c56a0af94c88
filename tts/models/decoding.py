"""Batched inference loops: KV-cached AR decoding and stage-by-stage NAR decoding.

AR: one prefill over [phonemes ; <bos> prompt] for the whole batch, then one cached step per
token. A sequence stops when its SAMPLED token is <eos> (never on the argmax: that cuts speech
short) or when it reaches its maximum length; <eos> is masked out before its minimum length.
Finished sequences are dropped from the batch and the cache, so they stop costing compute.
An AR with ar_alignment "durations" is given the frames of every phoneme (`plan_durations`) and
generates exactly their sum, with <eos> always masked.

NAR: for k = 2..n_q, one bidirectional pass predicts codebook k of every target position at once
(greedy by default).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import torch

from ..sampling import SamplingConfig, sample_tokens
from .ar import ARModel
from .nar import NARModel

StopReason = Literal["eos", "max_length", "durations"]


@dataclass
class ARRequest:
    phonemes: torch.Tensor          # [L] int64: prompt text + target text phonemes
    prompt: torch.Tensor            # [P] int64: the prompt's codebook-1 codes (P may be 0)
    min_len: int                    # <eos> not allowed before this many new frames
    max_len: int                    # stop here without <eos>
    generator: torch.Generator
    durations: Optional[torch.Tensor] = None   # [L] int64 frames per token (durations mode; sums to P + max_len)


def _spread(total: int, weights: torch.Tensor, minimum: torch.Tensor) -> torch.Tensor:
    """Integers >= minimum, proportional to weights, summing to total when total >= minimum.sum()
    (cumulative rounding: the rounding error never accumulates)."""
    w = weights.double().clamp(min=0)
    free = max(0, total - int(minimum.sum()))
    if float(w.sum()) <= 0:
        w = torch.ones_like(w)
    edges = torch.round(torch.cumsum(w, 0) / w.sum() * free).long()
    return minimum.long() + torch.diff(edges, prepend=edges.new_zeros(1))


@torch.no_grad()
def plan_durations(model: ARModel, phonemes: torch.Tensor, n_prompt: int, prompt_frames: int,
                   min_frames: torch.Tensor, speed: float = 1.0,
                   rate_bounds: tuple[float, float] = (0.5, 2.0)) -> torch.Tensor:
    """Frames per token [L] for a durations-mode AR: phonemes [L] = prompt text (n_prompt tokens) + target.

    The duration head predicts every token's frames from the text. The prompt's tokens share its
    prompt_frames in proportion to their predictions; the ratio of the prompt's real to predicted
    length (clamped to rate_bounds) is the speaker's tempo, which scales the target's durations
    (divided by `speed`). min_frames [L]: 1 for pronounced phones (none is skipped), 0 otherwise.
    """
    dev = next(model.parameters()).device
    pred = model.predict_durations(phonemes[None].to(dev), torch.tensor([phonemes.numel()], device=dev))[0].cpu()
    min_frames = min_frames.cpu().long()
    out = torch.zeros_like(min_frames)
    rate = 1.0
    if n_prompt > 0 and prompt_frames > 0:
        guess = float(pred[:n_prompt].sum())
        if guess > 0:
            rate = min(max(prompt_frames / guess, rate_bounds[0]), rate_bounds[1])
        out[:n_prompt] = _spread(prompt_frames, pred[:n_prompt], torch.zeros(n_prompt, dtype=torch.long))
    tgt = pred[n_prompt:] * rate / speed
    total = max(int(round(float(tgt.sum()))), int(min_frames[n_prompt:].sum()), 1)
    out[n_prompt:] = _spread(total, tgt, min_frames[n_prompt:])
    return out


@dataclass
class ARResult:
    codes: torch.Tensor             # [T] int64 generated codebook-1 codes (prompt excluded)
    stop: StopReason


@torch.inference_mode()
def ar_generate(model: ARModel, requests: Sequence[ARRequest], cfg: SamplingConfig) -> list[ARResult]:
    """Decode a batch of requests with the KV cache; results in request order."""
    if not requests:
        return []
    eos = model.cfg.eos_id
    by_durations = model.cfg.ar_alignment == "durations"
    if by_durations and any(r.durations is None for r in requests):
        raise ValueError("ar_generate: this AR (ar_alignment='durations') needs durations in every request "
                         "(tts.models.decoding.plan_durations)")
    max_new = max(r.max_len for r in requests)
    logits, cache, pos, align = model.prefill([r.phonemes for r in requests], [r.prompt for r in requests], max_new,
                                              durations=[r.durations for r in requests] if by_durations else None)
    active = list(range(len(requests)))          # request index of each batch row
    out: list[list[int]] = [[] for _ in requests]
    stop: list[Optional[StopReason]] = [None] * len(requests)
    while active:
        allow = torch.tensor([len(out[i]) >= requests[i].min_len and not by_durations for i in active])
        tok = sample_tokens(logits, [requests[i].generator for i in active], cfg,
                            history=[out[i] for i in active], allow_eos=allow, eos_id=eos)
        keep_rows = []
        for row, i in enumerate(active):
            t = int(tok[row])
            if t == eos:
                stop[i] = "eos"
                continue
            out[i].append(t)
            if len(out[i]) >= requests[i].max_len:
                stop[i] = "durations" if by_durations else "max_length"
                continue
            keep_rows.append(row)
        if len(keep_rows) < len(active):
            if not keep_rows:
                break
            rows = torch.tensor(keep_rows, dtype=torch.long, device=pos.device)
            cache.keep(rows)
            pos, tok = pos[rows], tok[keep_rows]
            align = align.keep(rows) if align is not None else None
            active = [active[r] for r in keep_rows]
        logits = model.step(tok.to(pos.device), pos, cache, align)
        pos = pos + 1
    return [ARResult(torch.tensor(o, dtype=torch.long), s) for o, s in zip(out, stop)]


@torch.inference_mode()
def nar_generate(model: NARModel, phonemes: Sequence[torch.Tensor], prompts: Sequence[torch.Tensor],
                 first: Sequence[torch.Tensor], durations: Optional[Sequence[torch.Tensor]] = None
                 ) -> list[torch.Tensor]:
    """Codebooks 2..n_q for each item, greedy: phonemes [L_b], prompt [>=n_q, P_b], first [T_b] -> codes [n_q, T_b].

    durations (a NAR with nar_alignment "durations"): [L_b] frames per token over prompt + target, as the
    AR's plan_durations gives them."""
    K = model.cfg.n_q
    dev = next(model.parameters()).device
    B = len(phonemes)
    L = torch.tensor([p.numel() for p in phonemes], device=dev)
    P = torch.tensor([p.shape[1] for p in prompts], device=dev)
    T = torch.tensor([f.numel() for f in first], device=dev)
    ph = torch.zeros(B, int(L.max()), dtype=torch.long, device=dev)
    dur = torch.zeros(B, int(L.max()), dtype=torch.long, device=dev) if durations is not None else None
    pr = torch.zeros(B, K, max(1, int(P.max())), dtype=torch.long, device=dev)
    codes = torch.zeros(B, K, max(1, int(T.max())), dtype=torch.long, device=dev)
    for b in range(B):
        ph[b, : L[b]] = phonemes[b]
        pr[b, :, : P[b]] = prompts[b][:K]
        codes[b, 0, : T[b]] = first[b]
        if dur is not None:
            if durations[b].numel() != L[b] or int(durations[b].sum()) != int(P[b] + T[b]):
                raise ValueError(f"nar_generate: item {b}: durations must give each of its {int(L[b])} phonemes "
                                 f"frames summing to prompt + target = {int(P[b] + T[b])}")
            dur[b, : L[b]] = durations[b]
    for k in model.stages:
        lg = model.stage_logits(ph, L, pr, P, codes, T, torch.full((B,), k, dtype=torch.long, device=dev), dur)
        codes[:, k - 1] = lg.argmax(-1)
    return [codes[b, :, : T[b]].cpu() for b in range(B)]


__all__ = ["ARRequest", "ARResult", "StopReason", "ar_generate", "nar_generate", "plan_durations"]
