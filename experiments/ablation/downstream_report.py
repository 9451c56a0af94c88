"""The Downstream TTS part of the ablation report: per-run rows, the per-variant table over seeds, the verdict.

One row per (variant, seed) from <out>/downstream/<variant>/seed<S>/result.json (downstream.py). The values
are gathered like the codec's (table.py): {metric: {variant: [value per seed]}}, shown as mean ± sd [min, max]
over seeds, and each NDVQ variant is judged against RVQ per metric with the codec verdict's rule
(verdict.outcome: win / loss when the means differ by more than the larger seed sd, tie within it,
undetermined under 2 seeds). The report (report.py) places the tables after the audio sections and the
paragraph in its verdict; the plot is plots.downstream_plot.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .downstream import DOWNSTREAM, downstream_runs, load, row_value, status
from .plan import BASELINE, RESULT, Plan
from .plots import DOWNSTREAM_PLOT
from .summary import fmt_num, fmt_outcomes, fmt_spread, mean_std
from .verdict import Comparison, outcome

log = logging.getLogger("experiments.ablation")


@dataclass(frozen=True)
class Metric:
    name: str                 # key of the downstream table
    title: str
    higher_is_better: Optional[bool]      # None: context only, not judged
    get: Callable[[dict], Optional[float]]


def _pitch(row: str, key: str) -> Callable[[dict], Optional[float]]:
    return lambda res: (row_value(res, row, "pitch") or {}).get(key)


def _valid(part: str, key: str) -> Callable[[dict], Optional[float]]:
    return lambda res: ((res.get("tts") or {}).get(part, {}).get("valid") or {}).get(key)


METRICS: tuple[Metric, ...] = (
    Metric("tts|wer", "TTS WER", False, lambda r: row_value(r, "tts", "wer")),
    Metric("tts|per", "TTS PER", False, lambda r: row_value(r, "tts", "per")),
    Metric("tts|sim", "TTS SIM (to the prompt)", True, lambda r: row_value(r, "tts", "sim")),
    Metric("tts|within_2st", "TTS F0 within 2 st of the prompt's (share of items)", True, _pitch("tts", "within_2st")),
    Metric("tts|abs_st", "TTS median F0 off the prompt's (mean absolute semitones)", False, _pitch("tts", "abs_st_mean")),
    Metric("ar|ce", "AR dev cross-entropy, codebook 1 (nats)", False, _valid("ar", "ce")),
    Metric("ar|top1", "AR dev top-1, codebook 1", True, _valid("ar", "top1")),
    Metric("nar|ce", "NAR dev cross-entropy, mean over codebooks 2.. (nats)", False, _valid("nar", "ce")),
    Metric("nar|top1", "NAR dev top-1, mean over codebooks 2..", True, _valid("nar", "top1")),
    # the NAR alone on the recording's own codebook 1: between it and the TTS lies the AR, between it and
    # the resynthesis the NAR (where a variant's TTS loses voice or words)
    Metric("gt_cb1_nar|wer", "ground-truth codebook 1 + NAR WER", False, lambda r: row_value(r, "gt_cb1_nar", "wer")),
    Metric("gt_cb1_nar|sim", "ground-truth codebook 1 + NAR SIM", True, lambda r: row_value(r, "gt_cb1_nar", "sim")),
    Metric("resynthesis|wer", "codec resynthesis WER (TTS's codebooks)", False, lambda r: row_value(r, "resynthesis", "wer")),
    Metric("resynthesis|per", "codec resynthesis PER", False, lambda r: row_value(r, "resynthesis", "per")),
    Metric("resynthesis|sim", "codec resynthesis SIM", True, lambda r: row_value(r, "resynthesis", "sim")),
)
# from the codec run of the same (variant, seed): what a lower CE is to be read against
CONTEXT = (("codes|entropy1", "stage-1 code entropy on the codec's test items (nats; ln perplexity)"),
           ("ar|below_entropy", "AR dev CE below that entropy (nats; what the AR predicts beyond code frequency)"))


# ------------------------------------------------------------------------------------------ rows and values
def downstream_rows(plan: Plan, settings=None, seeds: Optional[Sequence[int]] = None) -> list[dict]:
    """One row per (variant, seed): {variant, seed, run, status, result}; [] when no downstream was asked for
    or run. Without `settings` (a --report-only), the results of the most common settings are shown and
    any made with others are marked `other_settings` and left out of the numbers."""
    root = plan.out / DOWNSTREAM
    if settings is None and not root.is_dir():
        return []
    _warn_old_layout(plan)
    druns = downstream_runs(plan, seeds)
    results = {d.key: load(d.dir) for d in druns}
    key = None
    if settings is None:
        keys = Counter(r["key"] for r in results.values() if r is not None)
        key = keys.most_common(1)[0][0] if keys else None
    rows = []
    for d in druns:
        res = results[d.key]
        if settings is not None:
            st = status(plan, d, settings)
            res = res if st == "done" else None
        elif res is not None:
            st, res = ("done", res) if res["key"] == key else ("other_settings", None)
        else:
            st = "partial" if d.dir.is_dir() else "missing"
        rows.append({"variant": d.variant, "seed": d.seed, "run": d.key, "status": st, "result": res})
    return rows


def _warn_old_layout(plan: Plan) -> None:
    old = [v for v in plan.variants if (plan.out / DOWNSTREAM / v / RESULT).is_file()]
    if old:
        log.warning("%s: downstream results of the earlier one-seed layout (<variant>/result.json) for %s are "
                    "not read; the runs now live in <variant>/seed<S>/", plan.out / DOWNSTREAM, ", ".join(old))


def downstream_table(rows: list[dict], codec_results: Sequence[dict] = ()) -> dict:
    """{metric: {variant: [value per finished seed]}} of the finished rows (METRICS, then CONTEXT)."""
    entropy = {(r["variant"], r["seed"]): math.log(r["codestats"][0]["perplexity"])
               for r in codec_results if r.get("codestats")}
    table: dict[str, dict[str, list]] = {}

    def put(name, v, x):
        if x is not None and math.isfinite(x):
            table.setdefault(name, {}).setdefault(v, []).append(float(x))
    for r in rows:
        res = r["result"]
        if not res:
            continue
        for m in METRICS:
            put(m.name, r["variant"], m.get(res))
        h, ce = entropy.get((r["variant"], r["seed"])), _valid("ar", "ce")(res)
        put("codes|entropy1", r["variant"], h)
        put("ar|below_entropy", r["variant"], None if h is None or ce is None else h - ce)
    return table


def downstream_comparisons(table: dict, variants: Sequence[str]) -> list[Comparison]:
    """Each NDVQ variant against BASELINE on every judged metric both have (section "downstream")."""
    out = []
    for m in METRICS:
        per = table.get(m.name, {})
        if m.higher_is_better is None or BASELINE not in per:
            continue
        for v in variants:
            if v != BASELINE and v in per:
                oc, gain, spread = outcome(per[v], per[BASELINE], m.higher_is_better)
                out.append(Comparison("downstream", m.title, v, oc, gain, spread))
    return out


# ------------------------------------------------------------------------------------------ markdown
def downstream_markdown(rows: list[dict], table: dict, plots: bool) -> list[str]:
    if not rows:
        return []
    done = [r["result"] for r in rows if r["result"]]
    first = done[0] if done else None
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    L = ["", f"## Downstream TTS (every codec seed: {', '.join(map(str, seeds))}; the same TTS budget per run)", ""]
    if first:
        budgets = sorted({r["budget"] for r in done})
        L += [f"The recipe's TTS (egs/libritts/run.sh stages 4-8 unchanged) trained on each codec run's code dump, "
              f"{' / '.join(budgets)} (step-capped, no wall-clock cap); seed S = codec seed S, TTS training seed S "
              f"and synthesis seed S, the same for every variant. Zero-shot synthesis of {first.get('n_items')} "
              f"test items from {first.get('n_speakers')} unseen speakers (the same items for every run), scored "
              f"by stage 8: WER from {first.get('asr')}{' (a constrained setting)' if first.get('asr_constrained') else ''}; "
              "PER from the recipe's phoneme recognizer; SIM = cosine of "
              f"{first.get('speaker_encoder')} embeddings to the prompt; pitch: the output's median F0 against "
              f"the prompt's. Resynthesis = the run's codec at the TTS's {first.get('n_q')} codebooks. Dev "
              "cross-entropy and top-1: the last validation of exp/ar and exp/nar.", "",
              "Per variant: mean ± sd [min, max] over the finished seeds (n = seeds).", "",
              "| metric | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
        arrow = {True: " ↑", False: " ↓", None: ""}          # which way is better
        for name, title in [(m.name, m.title + arrow[m.higher_is_better]) for m in METRICS] + list(CONTEXT):
            per = table.get(name, {})
            L.append(f"| {title} | " + " | ".join(
                f"{fmt_spread(per.get(v))}" + (f" (n={len(per[v])})" if per.get(v) else "") for v in variants) + " |")
        L.append(f"| ground truth (recordings): WER / PER / SIM | {fmt_num(row_value(first, 'ground_truth', 'wer'))} / "
                 f"{fmt_num(row_value(first, 'ground_truth', 'per'))} / {fmt_num(row_value(first, 'ground_truth', 'sim'))}"
                 " (same-speaker ceiling)" + " |" * len(variants))
        L.append(f"| SIM floor (prompt vs other speakers) | {fmt_num(first.get('sim_floor'))}" + " |" * len(variants))
    L += ["", "Per run (stage 8's bootstrap 95 % intervals over items in brackets):", "",
          "| run | status | TTS WER | TTS PER | TTS SIM | F0 within 2 st | AR dev CE / top-1 | NAR dev CE / top-1 "
          "| resynthesis WER / SIM | min: wall (CPU) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        res = r["result"]
        if not res:
            L.append(f"| {r['run']} | {r['status']} | missing | missing | missing | - | - | - | - | - |")
            continue
        cost = (f"{res['seconds'] / 60:.1f} ({res['cpu_seconds'] / 60:.1f})"
                if res.get("seconds") is not None and res.get("cpu_seconds") is not None else "-")
        ar, nar = (((res.get("tts") or {}).get(p) or {}).get("valid") or {} for p in ("ar", "nar"))
        L.append(f"| {r['run']} | done | {_with_ci(res, 'wer')} | {_with_ci(res, 'per')} | {_with_ci(res, 'sim')} | "
                 f"{fmt_num(_pitch('tts', 'within_2st')(res))} | {fmt_num(ar.get('ce'))} / {fmt_num(ar.get('top1'))} | "
                 f"{fmt_num(nar.get('ce'))} / {fmt_num(nar.get('top1'))} | {fmt_num(row_value(res, 'resynthesis', 'wer'))}"
                 f" / {fmt_num(row_value(res, 'resynthesis', 'sim'))} | {cost} |")
    if done:
        L += ["", "Per-run stage 8 reports: " + ", ".join(f"`{r['report']}`" for r in done) + "."]
        if plots:
            L += ["", f"![downstream](plots/{DOWNSTREAM_PLOT})"]
    return L


def _with_ci(res: dict, key: str) -> str:
    x, ci = row_value(res, "tts", key), (row_value(res, "tts", "ci") or {}).get(key)
    return fmt_num(x) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else "")


def downstream_verdict(rows: list[dict], table: dict, comps: list[Comparison]) -> list[str]:
    """The downstream paragraphs of the verdict, generated from the rows and comparisons (empty without rows)."""
    if not rows:
        return []
    done = [r for r in rows if r["result"]]
    missing = [r["run"] for r in rows if not r["result"]]
    if not done:
        return [f"**Downstream TTS**: no run finished yet (missing: {', '.join(missing)}).", ""]
    first = done[0]["result"]
    n = Counter(r["variant"] for r in done)
    lines = []
    for v in dict.fromkeys(c.variant for c in comps):
        mine = [c for c in comps if c.variant == v]
        count = {o: sum(c.outcome == o for c in mine) for o in ("win", "tie", "loss", "undetermined")}
        s = (f"**Downstream TTS, {v}** vs **{BASELINE}** ({n[v]} vs {n[BASELINE]} seeds, {first['budget']} each, "
             f"{first.get('n_items')} items): {fmt_outcomes(count)} of {len(mine)}")
        # (+ 0.0: a zero difference of a lower-is-better metric is -0.0, printed "+0", not "-0")
        lines += [s + ":", ""] + [f"- {c.label}: {c.outcome} ({c.gain + 0.0:+.3g} in {v}'s favour"
                                  + (f" vs seed spread {c.spread:.2g})" if math.isfinite(c.spread) else ")")
                                  for c in mine] + [""]
    s = "**Downstream TTS, all variants**:"
    sims, floor = table.get("tts|sim", {}), first.get("sim_floor")
    if floor is not None and sims:
        above = [v for v, x in sims.items() if mean_std(x)[0] > floor]
        s += (f" mean TTS SIM above the different-speaker floor ({floor:.3f}): "
              + (", ".join(above) if above else "none (no speaker identity carried over at this budget)") + ".")
    pairs = [(row_value(r["result"], "tts", "wer"), row_value(r["result"], "resynthesis", "wer")) for r in done]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    if pairs:
        s += f" TTS WER above its own codec's resynthesis WER in {sum(a > b for a, b in pairs)} of {len(pairs)} runs."
    s += (" A lower dev cross-entropy says a variant's codes are easier to predict only against how spread its codes "
          "are: a codebook that uses few codes is easy to predict and carries little (the table's stage-1 code "
          "entropy and the AR's CE below it). Wins and losses are judged against the seed spread of codec and TTS "
          "together, at this budget only; a tie is not equality.")
    if missing:
        s += f" Not finished (left out of every number): {', '.join(missing)}."
    lines += [s, ""]
    return lines

