"""Pitch in tts.evaluate: each output's median F0 and F0 range against its prompt's (semitones), the
share of items within 2 semitones of the prompt, and for the rows that are time-aligned with the
recording (codec resynthesis, ground-truth codebook 1 + NAR) the frame scores against it (F0 error in
cents, GPE, VDE; data_prep.pitch), each with a bootstrap 95 % interval over items.

Read against: the ground-truth row (the recording vs its prompt, two utterances of one speaker: the
same-speaker ceiling; recordings of one speaker differ by about 0.4-1.0 semitone) and the
different-speaker floor (each prompt against the recordings of the OTHER test speakers).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from data_prep.pitch import f0_range_semitones, median_f0, pitch_scores, pooled_scores, semitones

from .bootstrap import Interval, mean_ci, ratio_ci, stat_ci

SEMITONE_TARGET = 2.0       # an output's median F0 within 2 semitones of its prompt's ...
SHARE_TARGET = 0.8          # ... on at least 80 % of the items
ALIGNED_ROWS = ("resynthesis", "gt_cb1_nar")     # rows on the recording's time axis

Track = Optional[np.ndarray]


def item_pitch(out: np.ndarray, prompt: Track, ref: Track = None) -> dict:
    """One output's pitch: its median F0 (Hz) and range (semitones, P5-P95), how far its median is from
    the prompt's (st_from_prompt, semitones) and its range from the prompt's; with `ref` (the recording,
    same time axis) the frame scores against it (`vs_recording`)."""
    rec = {"f0_median": _num(median_f0(out)), "f0_range_st": _num(f0_range_semitones(out))}
    if prompt is not None:
        pm, pr = median_f0(prompt), f0_range_semitones(prompt)
        rec["st_from_prompt"] = _num(semitones(median_f0(out), pm))
        rec["range_diff_st"] = _num(f0_range_semitones(out) - pr)
    if ref is not None:
        rec["vs_recording"] = {k: _num(v) for k, v in pitch_scores(out, ref).as_dict().items()}
    return rec


def _num(x: float) -> Optional[float]:
    return float(x) if x is not None and math.isfinite(x) else None


def _finite(xs: Sequence[Optional[float]]) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(x)]


def row_summary(recs: Sequence[Optional[dict]], outs: Sequence[Track] = (), refs: Sequence[Track] = ()) -> dict:
    """A row's pitch over its items (`recs`: item_pitch results, None where the item has no audio): the
    share within SEMITONE_TARGET of the prompt, mean |semitones| from the prompt, mean range and range
    difference, each with an interval; with `outs` and `refs` (the row's and the recordings' tracks) the
    pooled frame scores against the recordings."""
    st = _finite([r.get("st_from_prompt") for r in recs if r])
    within = [float(abs(x) <= SEMITONE_TARGET) for x in st]
    ranges = _finite([r.get("f0_range_st") for r in recs if r])
    diffs = _finite([r.get("range_diff_st") for r in recs if r])
    out = {"n": len(st), "within_2st": _mean(within), "within_2st_ci": mean_ci(within),
           "abs_st_mean": _mean([abs(x) for x in st]), "abs_st_ci": mean_ci([abs(x) for x in st]),
           "f0_median_hz": _num(float(np.median(_finite([r.get("f0_median") for r in recs if r]) or [math.nan]))),
           "range_st_mean": _mean(ranges), "range_diff_mean": _mean(diffs), "range_diff_ci": mean_ci(diffs)}
    pairs = [(o, r) for o, r in zip(outs, refs) if o is not None and r is not None]
    if pairs:
        out["vs_recording"] = frame_summary(pairs)
    return out


def frame_summary(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Pooled frame scores of (output, recording) track pairs with intervals over resampled items:
    cents_median, within_50, gpe, vde (+ *_ci) and voiced_both."""
    pooled = pooled_scores(list(pairs)).as_dict()
    per = []
    for o, r in pairs:
        n = min(len(o), len(r))
        o, r = np.asarray(o[:n], np.float64), np.asarray(r[:n], np.float64)
        both = (o > 0) & (r > 0)
        c = np.abs(1200.0 * np.log2(o[both] / r[both])) if both.any() else np.zeros(0)
        per.append((c, int(both.sum()), int(np.sum(c <= 50.0)), int(np.sum(np.abs(o[both] / r[both] - 1) > 0.2)),
                    int(np.sum((o > 0) != (r > 0))), n))
    both, w50, gross, vdis, frames = (np.array([p[k] for p in per], np.float64) for k in range(1, 6))

    def pooled_median(ix: np.ndarray) -> float:
        c = np.concatenate([per[i][0] for i in ix])
        return float(np.median(c)) if c.size else math.nan

    res = {k: _num(v) for k, v in pooled.items()}
    res.update(cents_median_ci=stat_ci(len(per), pooled_median), within_50_ci=ratio_ci(w50, both),
               gpe_ci=ratio_ci(gross, both), vde_ci=ratio_ci(vdis, frames))
    return res


def floor_summary(speakers: Sequence[Optional[str]], prompts: Sequence[Track], recordings: Sequence[Track]) -> dict:
    """The different-speaker floor: each prompt against the recordings of the other speakers; per item the
    share within SEMITONE_TARGET and the mean |semitones| over those recordings, then as row_summary."""
    meds_p = [median_f0(p) if p is not None else math.nan for p in prompts]
    meds_r = [median_f0(r) if r is not None else math.nan for r in recordings]
    within, dist = [], []
    for i, s in enumerate(speakers):
        st = [semitones(meds_r[j], meds_p[i]) for j, t in enumerate(speakers)
              if s is not None and t is not None and t != s]
        st = _finite(st)
        if st:
            within.append(float(np.mean([abs(x) <= SEMITONE_TARGET for x in st])))
            dist.append(float(np.mean(np.abs(st))))
    return {"n": len(within), "within_2st": _mean(within), "within_2st_ci": mean_ci(within),
            "abs_st_mean": _mean(dist), "abs_st_ci": mean_ci(dist)}


def _mean(xs: Sequence[float]) -> Optional[float]:
    return float(np.mean(xs)) if len(xs) else None


def pitch_target(summary: Optional[dict]) -> Optional[dict]:
    """The TTS's pitch target ({rule, tts, ci, limit, met}) from its row summary; None without items."""
    if not summary or summary.get("within_2st") is None:
        return None
    v = summary["within_2st"]
    return {"rule": f"TTS median F0 within {SEMITONE_TARGET:g} semitones of the prompt's on >= "
                    f"{SHARE_TARGET:.0%} of the items", "tts": v, "ci": summary.get("within_2st_ci"),
            "limit": SHARE_TARGET, "met": bool(v >= SHARE_TARGET)}


def female_male_items(gt_f0_medians: Sequence[Optional[float]]) -> list[int]:
    """Items whose recording has the highest and the lowest median F0 (one if they coincide; [] if none)."""
    v = np.array([x if x is not None else np.nan for x in gt_f0_medians], dtype=np.float64)
    if not np.isfinite(v).any():
        return []
    hi, lo = int(np.nanargmax(v)), int(np.nanargmin(v))
    return [hi] if hi == lo else [hi, lo]


__all__ = ["item_pitch", "row_summary", "frame_summary", "floor_summary", "pitch_target", "female_male_items",
           "SEMITONE_TARGET", "SHARE_TARGET", "ALIGNED_ROWS", "Interval"]
