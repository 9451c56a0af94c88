"""CTC forced alignment (Viterbi) and per-token durations.

`forced_align(log_probs [T, V], targets [N])` finds the best CTC path that spells `targets`: a
Viterbi pass over the blank-interleaved label sequence (2N + 1 states: blank, l1, blank, l2, ...,
blank), in log space, vectorised over the states and looped over time, O(T * N) time and an int8
back-pointer table [T, 2N + 1]. `forced_align_batch` runs one loop over time for a padded batch.
A path needs T >= N + (number of adjacent repeated labels) frames (`ctc_feasible`); an infeasible
item is an `AlignmentError`.

The result per frame is the index (0..N-1) of the target it belongs to, or -1 for a blank.
`token_durations` turns that into frames per token of the full `phonemes` token sequence (what the
TTS sees), summing exactly to T:
  - a phone's frames go to its token; stress marks get 0;
  - blank frames between two phones go to a punctuation token between them if there is one, else to
    the word separator `_` between them (pauses), else half to the left phone and half to the right
    (the left one gets the odd frame); given the log-probs, they are split by the posteriors instead
    (see token_durations: what durations.py does by default);
  - leading blanks go to the first token that is not a stress mark; trailing blanks go to the last
    non-phone token after the last phone if there is one (e.g. the final `.`), else to the last phone.
Other non-phone tokens (a second separator, specials) get 0.

`blank_penalty` (subtracted from the blank's log-prob before the search; 0 = plain Viterbi) makes
the path prefer phone frames to blanks: CTC outputs are peaky (a phone is often one frame of
high probability among blanks), so the plain path's blank runs are mostly inside phones, not pauses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .phones import is_phone

__all__ = ["AlignmentError", "Alignment", "ctc_feasible", "forced_align", "forced_align_batch", "token_durations",
           "STRESS_MARKS", "DEFAULT_PAUSE_PENALTY"]

from data_prep.symbols import PUNCTUATION, STRESS, WORD_SEP

STRESS_MARKS = frozenset(STRESS)
_PUNCT = frozenset(PUNCTUATION)
DEFAULT_PAUSE_PENALTY = 18.0     # measured on the mini dev set: docs/durations.md
_NEG = -1e30


class AlignmentError(ValueError):
    """No CTC path spells the targets in the given frames (too many phones for the audio)."""


@dataclass
class Alignment:
    """frame_targets int [T]: target index per frame (-1 = blank); score: path log-prob (with the blank
    penalty); logp: mean per-frame log-prob of the path without the penalty."""
    frame_targets: np.ndarray
    score: float
    logp: float


def ctc_feasible(targets: Sequence[int], frames: int) -> bool:
    """True if some CTC path spells `targets` in `frames` frames (repeats need a blank between)."""
    t = np.asarray(targets)
    repeats = int(np.sum(t[1:] == t[:-1])) if len(t) > 1 else 0
    return frames >= len(t) + repeats


def forced_align(log_probs: np.ndarray, targets: Sequence[int], blank: int = 0,
                 blank_penalty: float = 0.0) -> Alignment:
    """Best CTC path of `targets` through log_probs [T, V]. Raises AlignmentError if infeasible."""
    return forced_align_batch(np.asarray(log_probs)[None], [len(log_probs)], [targets], blank, blank_penalty)[0]


def forced_align_batch(log_probs: np.ndarray, lengths: Sequence[int], targets: Sequence[Sequence[int]],
                       blank: int = 0, blank_penalty: float = 0.0) -> list[Optional[Alignment]]:
    """Viterbi for a padded batch. log_probs float [B, T, V], lengths [B], targets: B label lists.

    Returns one Alignment per item, or None for an infeasible (or empty-target) item.
    """
    lp_all = np.asarray(log_probs, dtype=np.float64)
    B, T_max, _ = lp_all.shape
    N_max = max((len(t) for t in targets), default=0)
    S = 2 * N_max + 1
    labels = np.full((B, S), blank, dtype=np.int64)          # state -> label
    n_states = np.zeros(B, np.int64)
    ok = np.zeros(B, bool)
    skip = np.zeros((B, S), bool)                            # state s may be entered from s - 2
    for b, tg in enumerate(targets):
        tg = np.asarray(tg, np.int64)
        n_states[b] = 2 * len(tg) + 1
        labels[b, 1:2 * len(tg):2] = tg
        if len(tg) > 1:
            skip[b, 3:2 * len(tg):2] = tg[1:] != tg[:-1]
        ok[b] = len(tg) > 0 and ctc_feasible(tg, int(lengths[b]))
    lengths = np.asarray(lengths, np.int64)
    valid_state = np.arange(S)[None, :] < n_states[:, None]
    # emission log-probs per state [B, T, S]
    emit = np.take_along_axis(lp_all, np.broadcast_to(labels[:, None, :], (B, T_max, S)), axis=2)
    search = emit - blank_penalty * (labels == blank)[:, None, :]
    alpha = np.full((B, S), _NEG)
    alpha[:, 0] = search[:, 0, 0]
    if S > 1:
        alpha[:, 1] = search[:, 0, 1]
    alpha[~valid_state] = _NEG
    back = np.zeros((T_max, B, S), np.int8)
    for t in range(1, T_max):
        stay = alpha
        prev1 = np.concatenate([np.full((B, 1), _NEG), alpha[:, :-1]], axis=1)
        prev2 = np.concatenate([np.full((B, 2), _NEG), alpha[:, :-2]], axis=1)
        prev2 = np.where(skip, prev2, _NEG)
        cand = np.stack([stay, prev1, prev2])                # [3, B, S]
        best = cand.argmax(0)
        new = np.take_along_axis(cand, best[None], 0)[0] + search[:, t]
        new[~valid_state] = _NEG
        active = t < lengths                                 # finished items keep their alpha
        alpha = np.where(active[:, None], new, alpha)
        back[t] = np.where(active[:, None], best, 0)
    out: list[Optional[Alignment]] = []
    for b in range(B):
        if not ok[b]:
            out.append(None)
            continue
        T, ns = int(lengths[b]), int(n_states[b])
        last, second = alpha[b, ns - 1], alpha[b, ns - 2]
        s = ns - 1 if last >= second else ns - 2
        score = float(max(last, second))
        if score <= _NEG / 2:
            out.append(None)
            continue
        states = np.empty(T, np.int64)
        for t in range(T - 1, -1, -1):
            states[t] = s
            s -= int(back[t, b, s])
        frame_targets = np.where(states % 2 == 1, (states - 1) // 2, -1)
        logp = float(emit[b, np.arange(T), states].mean())
        out.append(Alignment(frame_targets, score, logp))
    return out


def _pause_token(tokens: Sequence[str], lo: int, hi: int) -> Optional[int]:
    """Between token positions lo and hi (exclusive): the first punctuation mark, else the first word
    separator, else None."""
    between = range(lo + 1, hi)
    for i in between:
        if tokens[i] in _PUNCT:
            return i
    for i in between:
        if tokens[i] == WORD_SEP:
            return i
    return None


def _split_two(a: np.ndarray, b: np.ndarray) -> int:
    """Frames of a run to give the left phone: argmax_k sum(a[:k]) + sum(b[k:]) (ties: the middle)."""
    k = len(a)
    score = np.concatenate([[0.0], np.cumsum(a)]) + np.concatenate([np.cumsum(b[::-1])[::-1], [0.0]])
    best = np.flatnonzero(score >= score.max() - 1e-9)
    return int(best[np.argmin(np.abs(best - k / 2))])


def _split_three(a: np.ndarray, p: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """(frames to the left phone, frames to the pause) maximising sum(a[:i]) + sum(p[i:j]) + sum(b[j:])."""
    k = len(a)
    ca, cp = np.concatenate([[0.0], np.cumsum(a)]), np.concatenate([[0.0], np.cumsum(p)])
    cb = np.concatenate([np.cumsum(b[::-1])[::-1], [0.0]])
    i = np.arange(k + 1)[:, None]
    j = np.arange(k + 1)[None, :]
    score = np.where(j >= i, ca[:, None] + (cp[None, :] - cp[:, None]) + cb[None, :], -np.inf)
    bi, bj = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(bi), int(bj - bi)


def token_durations(tokens: Sequence[str], frame_targets: np.ndarray, log_probs: Optional[np.ndarray] = None,
                    labels: Optional[Sequence[int]] = None,
                    pause_penalty: float = DEFAULT_PAUSE_PENALTY) -> list[int]:
    """Frames per token of the full token sequence (see the module docstring), summing to len(frame_targets).

    tokens: the `phonemes` field split on spaces. frame_targets [T]: index of the pronounced phone
    (0..N-1, counting only tokens that are phones) per frame, -1 for blank (forced_align's output).

    With log_probs [T, V] and labels (the N target label ids), a blank run between two phones is split
    by the recognizer's posteriors instead of in the middle: between phones A and B, the boundary k
    maximises sum log p(A) over the first k frames + sum log p(B) over the rest; where a pause token
    lies between them, the run is cut A | pause | B, a pause frame scoring log p(blank) - pause_penalty
    (a frame is a pause only where the blank beats both phones by more than e^pause_penalty: CTC
    outputs are peaky, so the blank also fills the inside of phones). Leading and trailing runs keep
    the rules above.
    """
    tokens = list(tokens)
    ft = np.asarray(frame_targets, np.int64)
    T = len(ft)
    pos = [i for i, t in enumerate(tokens) if is_phone(t)]
    dur = [0] * len(tokens)
    if not pos:
        raise AlignmentError("no pronounced phone in the token sequence")
    if ft.size and ft.max() >= len(pos):
        raise ValueError(f"frame targets reach phone {int(ft.max())} but the tokens have {len(pos)} phones")
    counts = np.bincount(ft[ft >= 0], minlength=len(pos))
    for n, i in enumerate(pos):
        dur[i] += int(counts[n])
    # runs of blank frames, with the phones before / after them (-1: none)
    is_blank = ft < 0
    t = 0
    while t < T:
        if not is_blank[t]:
            t += 1
            continue
        start = t
        while t < T and is_blank[t]:
            t += 1
        k = t - start
        left = int(ft[start - 1]) if start > 0 else -1
        right = int(ft[t]) if t < T else -1
        if left < 0 and right < 0:                           # no phone frame at all
            first = next(i for i, tok in enumerate(tokens) if tok not in STRESS_MARKS)
            dur[first] += k
        elif left < 0:                                       # leading silence
            first = next(i for i, tok in enumerate(tokens) if tok not in STRESS_MARKS)
            dur[first] += k
        elif right < 0:                                      # trailing silence
            after = [i for i in range(pos[left] + 1, len(tokens))
                     if not is_phone(tokens[i]) and tokens[i] not in STRESS_MARKS]
            dur[after[-1] if after else pos[left]] += k
        else:
            p = _pause_token(tokens, pos[left], pos[right])
            if log_probs is not None and labels is not None:
                seg = np.asarray(log_probs[start:t], dtype=np.float64)
                a, b = seg[:, labels[left]], seg[:, labels[right]]
                if p is not None:
                    n_left, n_pause = _split_three(a, seg[:, 0] - pause_penalty, b)
                    dur[p] += n_pause
                else:
                    n_left, n_pause = _split_two(a, b), 0
                dur[pos[left]] += n_left
                dur[pos[right]] += k - n_left - n_pause
            elif p is not None:
                dur[p] += k
            else:
                dur[pos[left]] += (k + 1) // 2
                dur[pos[right]] += k // 2
    assert sum(dur) == T, (sum(dur), T)
    return dur
