"""The ablation report: every finished run's cached result -> report.json, report.md and plots.

Numbers are mean ± std over seeds (sample std, ddof=1) of each run's mean over utterances. The
verdict compares every NDVQ variant with the RVQ baseline, per metric and bitrate (and per noise
condition, latent-noise level and code-usage summary):

    win   NDVQ's mean is better than RVQ's by more than the seed spread
    loss  worse by more than the seed spread
    tie   the difference is within the seed spread
    undetermined   fewer than 2 finished seeds on either side (no spread to judge by)

seed spread = the larger of the two variants' seed standard deviations. An audio comparison where
either side is not above the no-information floor by more than its spread is flagged "at floor":
there the quantizers are not told apart by audio at all. Missing runs are listed, never imputed.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np

from codec.metrics import HIGHER_IS_BETTER
from codec.checkpoint import load_codec_config
from core.io import atomic_path, atomic_write_text, portable_paths

from .downstream_report import (DOWNSTREAM_PLOT, downstream_markdown, downstream_plot, downstream_rows,
                                downstream_verdict)
from .plan import BASELINE, Plan, quantizer_differences, variant
from .runner import load_result

log = logging.getLogger("experiments.ablation")

Outcome = Literal["win", "tie", "loss", "undetermined"]
PLURAL = {"win": "wins", "tie": "ties", "loss": "losses", "undetermined": "undetermined"}
TITLES = {"pesq": "PESQ-WB", "stoi": "STOI", "si_sdr": "SI-SDR (dB)", "mel": "mel L1", "visqol": "ViSQOL"}
PLOTS = ("metrics_vs_bitrate.png", "robustness.png", "flips.png", "code_usage.png", "learning_curves.png")


# ------------------------------------------------------------------------------------------ verdict logic
def mean_std(vals: Sequence[float]) -> tuple[float, float, int]:
    a = np.asarray([v for v in vals if v is not None and math.isfinite(v)], dtype=float)
    if a.size == 0:
        return float("nan"), float("nan"), 0
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else float("nan"), int(a.size)


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
    section: str            # clean | noisy | flips_input | flips_latent | usage
    label: str              # e.g. "STOI @ 1.5 kbps"
    variant: str
    outcome: Outcome
    gain: float             # in NDVQ's favour (positive = better)
    spread: float
    at_floor: bool = False
    low_usage: bool = False     # flips: NDVQ uses under half RVQ's perplexity (few codes rarely flip)


# ------------------------------------------------------------------------------------------ collection
def _score(row_scores: dict, key: str) -> Optional[float]:
    s = row_scores.get(key)
    return None if not s or not s.get("n") else float(s["mean"])


def collect(results: list[dict]) -> dict:
    """Per-seed values keyed by what they measure: {name: {variant: [value per seed]}}."""
    table: dict[str, dict[str, list]] = {}

    def put(name, var, value):
        if value is not None:
            table.setdefault(name, {}).setdefault(var, []).append(value)
    for res in results:
        v = res["variant"]
        for row in res["clean"]["rows"]:
            tag = f"{row['kbps']:g}" if row["kind"] == "codes" else row["kind"]
            for k in res["keys"]:
                put(f"clean|{k}|{tag}", v, _score(row["scores"], k))
        for row in res["robustness"]["rows"]:
            for k in res["keys"]:
                put(f"noisy|{k}|{row['kind']}@{row['snr_db']:g}|{row['kbps']:g}", v, _score(row["scores"], k))
        for cond, fl in res["robustness"]["input_flips"].items():
            put(f"flips_input|{cond}", v, float(np.mean(fl)))
            put(f"flips_input_stage1|{cond}", v, fl[0])
        for lvl, fl in res["robustness"]["latent_flips"].items():
            put(f"flips_latent|{lvl}", v, float(np.mean(fl)))
            put(f"flips_latent_stage1|{lvl}", v, fl[0])
        cs = res["codestats"]
        put("usage|perplexity_mean", v, float(np.mean([s["perplexity"] for s in cs])))
        put("usage|used_mean", v, float(np.mean([s["codes_used"] for s in cs])))
        put("usage|used_min", v, float(min(s["codes_used"] for s in cs)))
        put("usage|distance_rel_stage1", v, cs[0]["distance_rel"])
        for s in cs:
            put(f"stage|used|{s['stage']}", v, s["codes_used"])
            put(f"stage|perplexity|{s['stage']}", v, s["perplexity"])
            if s.get("sigma_rel_median") is not None:
                put(f"stage|sigma_rel|{s['stage']}", v, s["sigma_rel_median"])
    return table


def compare_all(table: dict, variants: Sequence[str], keys: Sequence[str]) -> list[Comparison]:
    out = []
    ndvqs = [v for v in variants if v != BASELINE]
    for name, per in sorted(table.items()):
        parts = name.split("|")
        if parts[0] == "clean" and parts[2] not in ("unquantized", "no_information"):
            section, hib = "clean", HIGHER_IS_BETTER.get(parts[1], True)
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


SECTION_TITLES = {"clean": "clean audio", "noisy": "noisy input (scored against the clean reference)",
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
            s = f"{title}: {len(n['win'])} wins, {len(n['tie'])} ties, {len(n['loss'])} losses"
            if n["undetermined"]:
                s += f", {len(n['undetermined'])} undetermined (< 2 seeds)"
            s += f" of {len(cs)}"
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


# ------------------------------------------------------------------------------------------ formatting
def _fmt(vals: Optional[Sequence[float]], digits: int = 3) -> str:
    if not vals:
        return "missing"
    m, s, n = mean_std(vals)
    if n == 0:
        return "n/a"
    return f"{m:.{digits}f}" if n < 2 else f"{m:.{digits}f} ± {s:.{digits}f}"


def build(plan: Plan, settings, out: Optional[Path] = None, plots: bool = True, downstream=None) -> dict:
    """Read every run's result (missing ones marked) and write report.json, report.md and plots.

    `downstream`: the DownstreamSettings of this invocation (its results must match them); None shows
    whatever downstream results exist under <out>/downstream, each with its own budget.
    """
    from .plan import run_status
    out = Path(out or plan.out)
    runs = plan.runs()
    results, status = [], []
    for r in runs:
        res = load_result(r, settings)
        st = run_status(r, plan.steps)
        if st == "done" and res is None:
            st = "trained"                  # evaluated with other settings: needs re-evaluation
        status.append({"run": r.key, "variant": r.variant.name, "seed": r.seed, "status": st,
                       "train": (res or {}).get("train", {}), "eval_seconds": (res or {}).get("eval_seconds"),
                       "eval_cpu_seconds": (res or {}).get("eval_cpu_seconds")})
        if res is not None:
            results.append(res)
    keys = results[0]["keys"] if results else list(settings.metrics)
    bandwidths = results[0]["bandwidths"] if results else []
    table = collect(results)
    variants = list(plan.variants)
    comps = compare_all(table, variants, keys)
    seeds = {v: sum(1 for r in results if r["variant"] == v) for v in variants}
    # a finished run is described by the config it was trained with, not by today's base YAML
    cfgs = {r.variant.name: load_codec_config(r.dir) if (r.dir / "config.json").is_file() else plan.resolve_config(r)
            for r in runs if r.seed == plan.seeds[0]}
    departures = quantizer_differences(cfgs["ndvq_authors"], cfgs["ndvq"]) if {"ndvq_authors", "ndvq"} <= set(cfgs) else {}
    n_floor = sum(c.at_floor for c in comps if c.section == "clean")
    n_clean = sum(1 for c in comps if c.section == "clean")
    ds_rows = downstream_rows(plan, downstream)
    floor_note = cannot_show(plan, cfgs, n_floor, n_clean, status,
                             downstream=any(r["result"] for r in ds_rows))
    report = {"steps": plan.steps, "seeds": list(plan.seeds), "variants": variants, "keys": keys,
              "bandwidths": bandwidths, "settings": _settings_dict(settings), "runs": status,
              "values": table, "comparisons": [c.__dict__ for c in comps],
              "departures_ndvq_from_authors": {k: list(v) for k, v in departures.items()},
              "overrides": {v: list(variant(v).overrides) for v in variants},
              "downstream": ds_rows}
    report = portable_paths(report, out)      # committed reports name no machine paths (relative to out/ or the repo)
    md = markdown(report, comps, seeds, floor_note, plots)
    report["verdict"] = verdict_text(comps, variants, seeds, plan.steps, floor_note, downstream_verdict(ds_rows))
    out.mkdir(parents=True, exist_ok=True)
    if plots and results:
        from .plots import write_plots
        write_plots(out, report, results)
    if plots and any(r["result"] for r in ds_rows):
        downstream_plot(ds_rows, out / "plots" / DOWNSTREAM_PLOT)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(out / "report.md", md)
    log.info("report: %s (%d of %d runs evaluated)", out / "report.md", len(results), len(runs))
    return report


def _settings_dict(settings) -> dict:
    from dataclasses import asdict, is_dataclass
    return asdict(settings) if is_dataclass(settings) else dict(settings)


def cannot_show(plan: Plan, cfgs: dict, n_floor: int, n_clean: int, status: list[dict],
                downstream: bool = False) -> str:
    cfg = next(iter(cfgs.values()), None)
    audio = ""
    if cfg is not None:
        secs = plan.steps * cfg.data.batch_size * cfg.data.segment_seconds
        audio = (f" Each run saw {plan.steps} steps x {cfg.data.batch_size} crops of {cfg.data.segment_seconds:g} s "
                 f"= {secs / 3600:.2f} h of audio (the authors: 500k updates of ~230 crops), at lr {cfg.optim.lr:g} "
                 f"({cfg.optim.schedule} after {cfg.optim.warmup_steps} warmup steps), the bandwidth of a step "
                 + (f"the largest with probability {cfg.train.full_bandwidth_prob:g}, else " if cfg.train.full_bandwidth_prob
                    else "") + f"drawn uniformly from {', '.join(f'{b:g}' for b in cfg.train.bandwidths)} kbps.")
    missing = [s["run"] for s in status if s["status"] != "done"]
    s = (f"What this budget cannot show:{audio} Differences smaller than the seed spread of {len(plan.seeds)} "
         "seeds are reported as ties, not as equality. ")
    if n_clean:
        s += (f"{n_floor} of {n_clean} clean-audio comparisons have a side not above the no-information floor "
              "(marked [at floor]): there the decoder, not the quantizer, limits the score. ")
    if downstream:
        s += ("Listening quality, GAN-trained codecs and out-of-domain speech are not measured by these rows; the "
              "downstream TTS effect is measured once per variant (one seed, a small budget: see Downstream TTS).")
    else:
        s += ("Listening quality, GAN-trained codecs, out-of-domain speech and the downstream TTS effect are not "
              "measured by these rows.")
    if missing:
        s += f" Not finished (left out of every number): {', '.join(missing)}."
    return s


def markdown(report: dict, comps: list[Comparison], seeds: dict, floor_note: str, plots: bool) -> str:
    keys, bws, variants = report["keys"], report["bandwidths"], report["variants"]
    vals = report["values"]
    st = report["settings"]
    L = ["# NDVQ vs RVQ ablation", "",
         f"{report['steps']} training steps per run, seeds {report['seeds']}; held-out unseen speakers: "
         f"{st.get('items')} utterances of `{st.get('manifest')}` (speaker-balanced), robustness on the first "
         f"{st.get('robust_items')}. Mean ± std over seeds of the per-run means over utterances; `missing` = "
         "no finished run. PESQ-WB/STOI at 16 kHz; mel L1 lower is better.", "",
         "## Runs", "", "| run | status | steps | step s (median) | train min: wall (CPU) | eval s: wall (CPU) |",
         "|---|---|---|---|---|---|"]
    for r in report["runs"]:
        t = r["train"]
        cpu = f" ({r['eval_cpu_seconds']:.0f})" if r.get("eval_cpu_seconds") is not None else ""
        tcpu = f" ({t['cpu_seconds'] / 60:.1f})" if t.get("cpu_seconds") is not None else ""
        L.append(f"| {r['run']} | {r['status']} | {t.get('step', '-')} | "
                 f"{t['step_s_median']:.2f} | {t['seconds_total'] / 60:.1f}{tcpu} | {r['eval_seconds']:.0f}{cpu} |"
                 if t.get("step_s_median") is not None and r["eval_seconds"] is not None else
                 f"| {r['run']} | {r['status']} | - | - | - | - |")
    L += ["", "## Variants", "", "| variant | overrides (after the base config) |", "|---|---|"]
    L += [f"| {v} | `{' '.join(report['overrides'][v])}` |" for v in variants]
    dep = report["departures_ndvq_from_authors"]
    if dep:
        L += ["", "`ndvq` (this project's defaults) departs from the authors' quantizer in: "
              + ", ".join(f"`{k}` {b!r} instead of {a!r}" for k, (a, b) in dep.items()) + "."]
    L += ["", "## Verdict", ""] + verdict_text(comps, variants, seeds, report["steps"], floor_note,
                                               downstream_verdict(report["downstream"]))
    L += downstream_markdown(report["downstream"], plots)
    for k in keys:
        L += ["", f"## {TITLES.get(k, k)}{' (lower is better)' if not HIGHER_IS_BETTER.get(k, True) else ''}, clean input",
              "", "| variant | " + " | ".join(f"{b:g} kbps" for b in bws) + " | unquantized | no information |",
              "|---|" + "---|" * (len(bws) + 2)]
        for v in variants:
            cells = [_fmt(vals.get(f"clean|{k}|{b:g}", {}).get(v)) for b in bws]
            cells += [_fmt(vals.get(f"clean|{k}|{t}", {}).get(v)) for t in ("unquantized", "no_information")]
            L.append(f"| {v} | " + " | ".join(cells) + " |")
    noisy = sorted({n.split("|", 2)[2] for n in vals if n.startswith("noisy|")})
    if noisy:
        for k in [k for k in keys if any(n.startswith(f"noisy|{k}|") for n in vals)]:
            L += ["", f"## {TITLES.get(k, k)}, noisy input (condition dB @ kbps)", "",
                  "| variant | " + " | ".join(noisy) + " |", "|---|" + "---|" * len(noisy)]
            L += [f"| {v} | " + " | ".join(_fmt(vals.get(f"noisy|{k}|{c}", {}).get(v)) for c in noisy) + " |"
                  for v in variants]
    for kind, title in (("flips_input", "input noise (dB)"), ("flips_latent", "Gaussian latent noise (x latent std)")):
        conds = sorted({n.split("|")[1] for n in vals if n.startswith(kind + "|")}, key=_num_key)
        if conds:
            L += ["", f"## Code flips under {title}: mean over stages (stage 1)", "",
                  "| variant | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
            L += [f"| {v} | " + " | ".join(f"{_fmt(vals.get(f'{kind}|{c}', {}).get(v))} "
                                          f"({_fmt(vals.get(f'{kind}_stage1|{c}', {}).get(v))})" for c in conds) + " |"
                  for v in variants]
    stages = sorted({int(n.split("|")[2]) for n in vals if n.startswith("stage|used|")})
    if stages:
        L += ["", "## Code statistics per stage (clean evaluation utterances, all stages)", "",
              "Used codes, perplexity; NDVQ: median sigma of the used codes / std of the stage's residual.", "",
              "| variant | " + " | ".join(f"stage {s}" for s in stages) + " |", "|---|" + "---|" * len(stages)]
        for v in variants:
            cells = []
            for s in stages:
                c = f"{_fmt(vals.get(f'stage|used|{s}', {}).get(v), 0)} / {_fmt(vals.get(f'stage|perplexity|{s}', {}).get(v), 0)}"
                sig = vals.get(f"stage|sigma_rel|{s}", {}).get(v)
                cells.append(c + (f" / σ {_fmt(sig, 2)}" if sig else ""))
            L.append(f"| {v} | " + " | ".join(cells) + " |")
    if plots:
        L += ["", "## Plots", ""] + [f"![{p[:-4]}](plots/{p})" for p in PLOTS]
    return "\n".join(L) + "\n"


def _num_key(s: str):
    try:
        return (0, float(s.split("@")[-1]), s)
    except ValueError:
        return (1, 0.0, s)


def save_png(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
