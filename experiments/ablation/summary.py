"""How the ablation's report states a number: mean ± std over seeds, its text, the metric titles.

Shared by the verdict (verdict.py), the report's tables (report.py, downstream_report.py), the plots
(plots.py) and the downstream's log line (downstream.py); it imports nothing of the ablation.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from codec.evaluation.metrics import HIGHER_IS_BETTER as METRIC_HIGHER_IS_BETTER
from codec.evaluation.pitch import PITCH_HIGHER_IS_BETTER, PITCH_KEYS, PITCH_TITLES

TITLES = {"pesq": "PESQ-WB", "stoi": "STOI", "si_sdr": "SI-SDR (dB)", "mel": "mel L1", "visqol": "ViSQOL",
          **PITCH_TITLES}
# the audio metrics' and the pitch scores' directions: the clean rows hold both (clean|<key>|<kbps>)
HIGHER_IS_BETTER = {**METRIC_HIGHER_IS_BETTER, **PITCH_HIGHER_IS_BETTER}


def mean_std(vals: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample std (ddof=1; nan under 2 values), count) of the finite values of `vals`."""
    a = np.asarray([v for v in vals if v is not None and math.isfinite(v)], dtype=float)
    if a.size == 0:
        return float("nan"), float("nan"), 0
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else float("nan"), int(a.size)


def fmt_seeds(vals: Optional[Sequence[float]], digits: int = 3) -> str:
    """Per-seed values as a table cell: "m ± s", "m" (one seed), "n/a" (none finite), "missing"."""
    if not vals:
        return "missing"
    m, s, n = mean_std(vals)
    if n == 0:
        return "n/a"
    return f"{m:.{digits}f}" if n < 2 else f"{m:.{digits}f} ± {s:.{digits}f}"


PLURAL = {"win": "wins", "tie": "ties", "loss": "losses", "undetermined": "undetermined"}


def fmt_outcomes(count: dict[str, int]) -> str:
    """{"win": 1, "tie": 0, "loss": 2, "undetermined": 0} -> "1 win, 0 ties, 2 losses"."""
    s = ", ".join(f"{count.get(o, 0)} {o if count.get(o, 0) == 1 else PLURAL[o]}" for o in ("win", "tie", "loss"))
    return s + (f", {count['undetermined']} undetermined (< 2 seeds)" if count.get("undetermined") else "")


def fmt_num(x, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def fmt_spread(vals: Optional[Sequence[float]], digits: int = 3) -> str:
    """Per-seed values as "mean ± sd [min, max]" (one value: itself; none: "missing")."""
    cell = fmt_seeds(vals, digits)
    a = [v for v in (vals or []) if v is not None and math.isfinite(v)]
    return cell + (f" [{min(a):.{digits}f}, {max(a):.{digits}f}]" if len(a) > 1 else "")


def num_key(s: str):
    """Sort key of condition labels ("white@20", "0.1"): by the number after the last "@", then text."""
    try:
        return (0, float(s.split("@")[-1]), s)
    except ValueError:
        return (1, 0.0, s)
