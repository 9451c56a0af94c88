"""Bootstrap 95 % intervals of tts.evaluate's scores: resample the items with replacement (fixed seed),
recompute the score on each resample, take the 2.5th and 97.5th percentiles.

An item is the unit that varies (its sentence, its prompt, its speaker), so items are resampled, never
frames or words: a corpus WER is recomputed as the resample's errors over its reference words, a pooled
pitch score from the resample's frames. Every interval of one report uses the same resamples (the same
seed and item count), so the intervals of two rows move together as the rows' scores do.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95

Interval = Optional[list[float]]       # [low, high], None when there is nothing to resample


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """[resamples, n] item indices drawn with replacement (the same draw for the same n and seed)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(values: np.ndarray) -> Interval:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    a = (1.0 - LEVEL) / 2
    return [float(np.quantile(v, a)), float(np.quantile(v, 1.0 - a))]


def mean_ci(values: Sequence[Optional[float]], resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """Interval of the mean of the finite values (missing ones left out before resampling)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return None
    return _interval(v[resample_indices(v.size, resamples, seed)].mean(axis=1))


def ratio_ci(num: Sequence[float], den: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """Interval of sum(num) / sum(den) over resampled items (a corpus WER: errors / reference words)."""
    a, b = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ratio_ci: {a.size} numerators but {b.size} denominators")
    if a.size == 0:
        return None
    idx = resample_indices(a.size, resamples, seed)
    d = b[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _interval(np.where(d > 0, a[idx].sum(axis=1) / np.where(d > 0, d, 1), np.nan))


def stat_ci(n: int, stat: Callable[[np.ndarray], float], resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """Interval of any statistic of a resample, `stat(indices [n]) -> float` (a pooled median, ...)."""
    if n == 0:
        return None
    return _interval(np.array([stat(ix) for ix in resample_indices(n, resamples, seed)], dtype=np.float64))


def fmt_ci(value: Optional[float], ci: Interval, nd: int = 3) -> str:
    """`0.569 [0.551, 0.588]`; the value alone without an interval; n/a without a value."""
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{value:.{nd}f}"
    return text + (f" [{ci[0]:.{nd}f}, {ci[1]:.{nd}f}]" if ci else "")
