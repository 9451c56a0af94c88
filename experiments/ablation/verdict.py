"""The ablation's verdict: each NDVQ variant against the RVQ baseline, number by number.

Numbers are mean ± std over seeds (sample std, ddof=1) of each run's mean over utterances. The
verdict compares every NDVQ variant with the RVQ baseline, per metric and bitrate (audio metrics and the
pitch scores of the clean rows), per noise condition, latent-noise level and code-usage summary, and per
downstream TTS metric (downstream_report.py, with the same rule):

    win   NDVQ's mean is better than RVQ's by more than the seed spread
    loss  worse by more than the seed spread
    tie   the difference is within the seed spread
    undetermined   fewer than 2 finished seeds on either side (no spread to judge by)

seed spread = the larger of the two variants' seed standard deviations. An audio comparison where
either side is not above the no-information floor by more than its spread is flagged "at floor":
there the quantizers are not told apart by audio at all. Missing runs are listed, never imputed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from .plan import BASELINE
from .summary import HIGHER_IS_BETTER, PITCH_KEYS, PLURAL, TITLES, fmt_outcomes, mean_std

Outcome = Literal["win", "tie", "loss", "undetermined"]


def outcome(ndvq: Sequence[float], rvq: Sequence[float], higher_is_better: bool) -> tuple[Outcome, float, float]:
    """(outcome, difference in NDVQ's favour, spread) of two sets of per-seed values (module docstring)."""
    ma, sa, na = mean_std(ndvq)
    mb, sb, nb = mean_std(rvq)
    if na < 2 or nb < 2:
        return "undetermined", (ma - mb) * (1 if higher_is_better else -1), float("nan")
    gain = (ma - mb) if higher_is_better else (mb - ma)
    spread = max(sa, sb)
    if abs(gain) <= spread:
        return "tie", gain, spread
    return ("win" if gain > 0 else "loss"), gain, spread


def above_floor(vals: Sequence[float], floor: Sequence[float], higher_is_better: bool) -> bool:
    """Better than the no-information floor by more than the seed spread of either."""
    ma, sa, _ = mean_std(vals)
    mf, sf, _ = mean_std(floor)
    gain = (ma - mf) if higher_is_better else (mf - ma)
    return bool(gain > np.nanmax([sa, sf, 0.0]))


@dataclass
class Comparison:
    section: str            # clean | pitch | noisy | flips_input | flips_latent | usage (| downstream)
    label: str              # e.g. "STOI @ 1.5 kbps"
    variant: str
    outcome: Outcome
    gain: float             # in NDVQ's favour (positive = better)
    spread: float
    at_floor: bool = False
    low_usage: bool = False     # flips: NDVQ uses under half RVQ's perplexity (few codes rarely flip)



def compare_all(table: dict, variants: Sequence[str]) -> list[Comparison]:
    """Every NDVQ variant against BASELINE on every comparable name of `table` (table.py)."""
    out = []
    ndvqs = [v for v in variants if v != BASELINE]
    for name, per in sorted(table.items()):
        parts = name.split("|")
        if parts[0] == "clean" and parts[2] not in ("unquantized", "no_information"):
            section = "pitch" if parts[1] in PITCH_KEYS else "clean"
            hib = HIGHER_IS_BETTER.get(parts[1], True)
            label = f"{TITLES.get(parts[1], parts[1])} @ {parts[2]} kbps"
            floor = table.get(f"clean|{parts[1]}|no_information", {})
        elif parts[0] == "noisy":
            section, hib = "noisy", HIGHER_IS_BETTER.get(parts[1], True)
            label = f"{TITLES.get(parts[1], parts[1])}, {parts[2]} dB @ {parts[3]} kbps"
            floor = None
        elif parts[0] in ("flips_input", "flips_latent"):
            section, hib = parts[0], False
            label = (f"code flips (mean over stages), input {parts[1]} dB" if parts[0] == "flips_input"
                     else f"code flips (mean over stages), latent noise {parts[1]} x std")
            floor = None
        elif name in ("usage|perplexity_mean", "usage|used_min"):
            section, hib = "usage", True
            label = {"usage|perplexity_mean": "code perplexity (mean over stages)",
                     "usage|used_min": "used codes of the least-used stage"}[name]
            floor = None
        else:
            continue
        if BASELINE not in per:
            continue
        for v in ndvqs:
            if v not in per:
                continue
            oc, gain, spread = outcome(per[v], per[BASELINE], hib)
            at_floor = bool(floor) and not (above_floor(per[v], floor.get(v, []), hib)
                                           and above_floor(per[BASELINE], floor.get(BASELINE, []), hib))
            ppl = table.get("usage|perplexity_mean", {})
            low = (section.startswith("flips") and v in ppl and BASELINE in ppl
                   and mean_std(ppl[v])[0] < 0.5 * mean_std(ppl[BASELINE])[0])
            out.append(Comparison(section, label, v, oc, gain, spread, at_floor, bool(low)))
    return out


SECTION_TITLES = {"clean": "clean audio", "pitch": "pitch of clean audio (F0 track against the recording's)",
                  "noisy": "noisy input (scored against the clean reference)",
                  "flips_input": "code stability under input noise", "flips_latent": "code stability under latent noise",
                  "usage": "codebook use"}


def verdict_text(comps: list[Comparison], variants: Sequence[str], seeds: dict[str, int], plan_steps: int,
                 floor_note: str, downstream: Sequence[str] = ()) -> list[str]:
    """The verdict paragraphs, generated from the comparisons (`downstream`: its paragraph, before the
    closing note on what the budget cannot show)."""
    lines = []
    for v in [v for v in variants if v != BASELINE]:
        mine = [c for c in comps if c.variant == v]
        head = f"**{v}** vs **{BASELINE}** ({seeds.get(v, 0)} vs {seeds.get(BASELINE, 0)} seeds, {plan_steps} steps each):"
        if not mine:
            lines += [head + " no comparison yet (runs missing).", ""]
            continue
        parts = []
        for sec, title in SECTION_TITLES.items():
            cs = [c for c in mine if c.section == sec]
            if not cs:
                continue
            n = {o: [c for c in cs if c.outcome == o] for o in ("win", "tie", "loss", "undetermined")}
            s = f"{title}: {fmt_outcomes({o: len(cs_o) for o, cs_o in n.items()})} of {len(cs)}"
            for o in ("win", "loss"):
                if n[o]:
                    s += f"; {PLURAL[o]}: " + ", ".join(f"{c.label} ({c.gain:+.3g} vs spread {c.spread:.2g})"
                                                  + (" [at floor]" if c.at_floor else "") for c in n[o])
            if any(c.low_usage for c in cs):
                s += (" [low usage: this variant's code perplexity is under half RVQ's, so fewer flips may only "
                      "mean fewer codes in use]")
            parts.append(s)
        lines += [head, ""] + [f"- {p}." for p in parts] + [""]
    lines += [*downstream, floor_note, ""]
    return lines

