"""The scores of tts.evaluate: WER / PER detail, speech spans and duration ratios, the speaker-similarity
floor, the rows' summaries (RowScores, EvalReport) and the targets they are judged by."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

__all__ = ["RowScores", "EvalReport", "word_errors", "phone_scores", "speech_seconds", "duration_summary",
           "targets", "mean", "SPEECH_FLOOR_DB"]

WER_TARGET_RATIO = 1.5      # TTS WER <= 1.5x resynthesis WER
PER_TARGET_RATIO = 1.5      # TTS PER <= 1.5x resynthesis PER
SIM_TARGET_MARGIN = 0.1     # TTS SIM >= different-speaker floor + 0.1
DURATION_TARGET = (0.8, 1.25)   # median duration ratio TTS / ground truth
VOICE_TARGET = (0.15, 0.1, 0.8)  # the prompt's voice: SIM >= floor + 0.15, CI low end > floor + 0.1, >= 0.8 x resynthesis


@dataclass
class RowScores:
    name: str
    n: int                               # items with audio for this row
    missing: int                         # items without audio (counted as all-deletion for WER)
    wer: Optional[float] = None
    wer_detail: dict = field(default_factory=dict)
    per: Optional[float] = None          # corpus phoneme error rate (with --aligner)
    per_detail: dict = field(default_factory=dict)     # substitutions/deletions/insertions/ref_phones
    seconds: Optional[float] = None      # mean duration of the row's audio
    sim: Optional[float] = None          # mean cosine to the prompt
    sim_std: Optional[float] = None
    dnsmos: dict = field(default_factory=dict)         # mean ovrl/sig/bak/p808
    codec_metrics: dict = field(default_factory=dict)  # mean pesq/stoi/si_sdr/mel vs the recording
    ci: dict = field(default_factory=dict)             # bootstrap 95 % intervals: wer, per, sim -> [low, high]
    pitch: dict = field(default_factory=dict)          # tts.evaluation.pitch.row_summary


@dataclass
class EvalReport:
    rows: dict[str, RowScores]
    sim_floor: Optional[float]           # prompt vs other speakers' recordings
    targets: dict
    setting: dict
    items: list[dict]                    # per item, per row: hyp, wer, sim, dnsmos, ...
    seconds: float
    durations: dict = field(default_factory=dict)      # duration ratio TTS / ground truth: median, min, max
    floors: dict = field(default_factory=dict)         # different_speaker, codec_different_speaker, nearest_training_voice

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = {k: asdict(v) for k, v in self.rows.items()}
        return d


def mean(xs: Sequence[Optional[float]]) -> Optional[float]:
    """Mean of the finite values, None when there are none."""
    v = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def word_errors(ref: str, hyp: str) -> dict:
    """Substitutions, deletions, insertions and reference words of one item (normalised as for WER;
    an empty hypothesis is all deletions)."""
    import jiwer
    from tts.evaluation.asr import normalize_for_wer
    r, h = normalize_for_wer(ref), normalize_for_wer(hyp)
    o = jiwer.process_words(r, h)
    return {"substitutions": int(o.substitutions), "deletions": int(o.deletions),
            "insertions": int(o.insertions), "ref_words": len(r.split())}


def phone_scores(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> tuple[float, list[float], dict]:
    """(corpus PER, per-item PER, substitutions/deletions/insertions/ref_phones) of phone lists: the PER is
    ``tts.align.recognizer.phoneme_error_rate`` (total edits / total reference phones), the split of the
    edits is jiwer's alignment of the same lists. A missing or empty hypothesis is all deletions."""
    import jiwer
    from tts.align.recognizer import edit_distance, phoneme_error_rate
    if len(refs) != len(hyps):
        raise ValueError(f"phone_scores: {len(refs)} references but {len(hyps)} hypotheses")
    per_item = [edit_distance(r, h) / len(r) if len(r) else float("nan") for r, h in zip(refs, hyps)]
    keep = [i for i, r in enumerate(refs) if len(r)]
    detail = {"substitutions": 0, "deletions": 0, "insertions": 0, "ref_phones": sum(len(r) for r in refs)}
    if keep:
        o = jiwer.process_words([" ".join(refs[i]) for i in keep], [" ".join(hyps[i]) for i in keep])
        detail.update(substitutions=int(o.substitutions), deletions=int(o.deletions), insertions=int(o.insertions))
    return float(phoneme_error_rate([list(r) for r in refs], [list(h) for h in hyps])), per_item, detail


SPEECH_FLOOR_DB = -40.0     # the speech span: 20 ms frames within this of the loudest frame


def speech_seconds(wav: np.ndarray, sr: int) -> float:
    """Seconds from the first to the last 20 ms frame within SPEECH_FLOOR_DB of the loudest one: the
    length without leading and trailing pauses (a TTS output continues its prompt, so it has no
    leading pause while a recording has one)."""
    hop = max(1, int(0.02 * sr))
    n = len(wav) // hop
    if n == 0:
        return len(wav) / sr
    rms = np.sqrt(np.mean(np.asarray(wav[: n * hop], dtype=np.float64).reshape(n, hop) ** 2, axis=1)) + 1e-12
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > SPEECH_FLOOR_DB)
    return (loud[-1] - loud[0] + 1) * hop / sr


def duration_summary(per_item: Sequence[dict]) -> dict:
    """Duration ratio TTS / ground truth of every item with both audios, on the speech spans
    (``speech_seconds``; whole files where a row lacks them): sets ``item["duration_ratio"]`` and
    returns {n, median, min, max, median_untrimmed} ({} when no item has both)."""
    ratios, raw = [], []
    for rec in per_item:
        t, g = rec.get("tts") or {}, rec.get("ground_truth") or {}
        if t.get("seconds") is not None and g.get("seconds"):
            a, b = t.get("speech_seconds", t["seconds"]), g.get("speech_seconds", g["seconds"])
            rec["duration_ratio"] = a / b if b else float("nan")
            ratios.append(rec["duration_ratio"])
            raw.append(t["seconds"] / g["seconds"])
    if not ratios:
        return {}
    return {"n": len(ratios), "median": float(np.median(ratios)), "min": float(np.min(ratios)),
            "max": float(np.max(ratios)), "median_untrimmed": float(np.median(raw))}


def targets(rows: dict[str, RowScores], floor: Optional[float] = None, durations: Optional[dict] = None) -> dict:
    """The evaluation's targets (tts/evaluate.py's docstring), each {rule, tts, base, limit, ratio?, met}; a target whose inputs are missing is
    left out."""
    t: dict = {}
    tts, rs = rows.get("tts"), rows.get("resynthesis")
    for key, ratio in (("wer", WER_TARGET_RATIO), ("per", PER_TARGET_RATIO)):
        a, b = (getattr(tts, key), getattr(rs, key)) if tts and rs else (None, None)
        if a is not None and b is not None:
            limit = ratio * b
            t[key] = {"rule": f"TTS {key.upper()} <= {ratio:g} x resynthesis {key.upper()}", "tts": a,
                      "base": b, "resynthesis": b, "limit": limit, "ratio": a / b if b else None,
                      "met": bool(a <= limit)}
    if tts and tts.sim is not None and floor is not None:
        limit = floor + SIM_TARGET_MARGIN
        t["sim"] = {"rule": f"TTS SIM >= different-speaker floor + {SIM_TARGET_MARGIN:g}", "tts": tts.sim,
                    "base": floor, "floor": floor, "limit": limit, "met": bool(tts.sim >= limit)}
        ci = (tts.ci or {}).get("sim")
        if ci and rs and rs.sim is not None:
            lim = {"sim": floor + VOICE_TARGET[0], "ci_low": floor + VOICE_TARGET[1], "resynthesis": VOICE_TARGET[2] * rs.sim}
            t["voice"] = {"rule": f"TTS SIM >= floor + {VOICE_TARGET[0]:g}, the low end of its 95 % interval > floor + "
                                  f"{VOICE_TARGET[1]:g}, and SIM >= {VOICE_TARGET[2]:g} x the resynthesis's",
                          "tts": tts.sim, "ci": ci, "floor": floor, "resynthesis": rs.sim, "limit": lim,
                          "met": bool(tts.sim >= lim["sim"] and ci[0] > lim["ci_low"] and tts.sim >= lim["resynthesis"])}
    if durations:
        lo, hi = DURATION_TARGET
        med = durations["median"]
        t["duration"] = {"rule": f"median duration ratio TTS / ground truth in {lo:g}-{hi:g}", "tts": med,
                         "limit": [lo, hi], "min": durations["min"], "max": durations["max"],
                         "met": bool(lo <= med <= hi)}
    return t
