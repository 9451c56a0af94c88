"""The ablation report: every finished run's cached result -> report.json, report.md and plots.

Numbers are mean ± std over seeds (sample std, ddof=1) of each run's mean over utterances; the verdict
(verdict.py: win / tie / loss against the seed spread, "at floor", "low usage") compares every NDVQ
variant with the RVQ baseline. Missing runs are listed, never imputed. docs/ablation.md describes it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Optional

from codec.checkpoint import load_codec_config
from core.io import atomic_write_text, portable_paths

from .downstream_report import (downstream_comparisons, downstream_markdown, downstream_rows, downstream_table,
                                downstream_verdict)
from .plan import Plan, quantizer_differences, run_status, variant
from .plots import DOWNSTREAM_PLOT, PLOTS, downstream_plot, write_plots
from .runner import load_result
from .summary import HIGHER_IS_BETTER, PITCH_KEYS, TITLES, fmt_seeds, num_key
from .table import collect
from .verdict import Comparison, compare_all, verdict_text

log = logging.getLogger("experiments.ablation")


def build(plan: Plan, settings, out: Optional[Path] = None, plots: bool = True, downstream=None) -> dict:
    """Read every run's result (missing ones marked) and write report.json, report.md and plots.

    `downstream`: the DownstreamSettings of this invocation (its results must match them); None shows
    the downstream results under <out>/downstream made with their most common settings.
    """
    out = Path(out or plan.out)
    runs = plan.runs()
    results, status = run_results(plan, settings)
    keys = results[0]["keys"] if results else list(settings.metrics)
    bandwidths = results[0]["bandwidths"] if results else []
    table = collect(results)
    pitch_keys = [k for k in PITCH_KEYS if any(n.startswith(f"clean|{k}|") for n in table)]
    variants = list(plan.variants)
    comps = compare_all(table, variants)
    seeds = {v: sum(1 for r in results if r["variant"] == v) for v in variants}
    # a finished run is described by the config it was trained with, not by today's base YAML
    cfgs = {r.variant.name: load_codec_config(r.dir) if (r.dir / "config.json").is_file() else plan.resolve_config(r)
            for r in runs if r.seed == plan.seeds[0]}
    departures = quantizer_differences(cfgs["ndvq_authors"], cfgs["ndvq"]) if {"ndvq_authors", "ndvq"} <= set(cfgs) else {}
    n_floor = sum(c.at_floor for c in comps if c.section == "clean")
    n_clean = sum(1 for c in comps if c.section == "clean")
    ds_rows = downstream_rows(plan, downstream)            # every (variant, seed), also those not picked now
    ds_table = downstream_table(ds_rows, results)
    ds_comps = downstream_comparisons(ds_table, variants)
    floor_note = cannot_show(plan, cfgs, n_floor, n_clean, status,
                             downstream=any(r["result"] for r in ds_rows))
    report = {"steps": plan.steps, "seeds": list(plan.seeds), "variants": variants, "keys": keys,
              "pitch_keys": pitch_keys,
              "bandwidths": bandwidths, "settings": _settings_dict(settings), "runs": status,
              "values": table, "comparisons": [c.__dict__ for c in comps],
              "departures_ndvq_from_authors": {k: list(v) for k, v in departures.items()},
              "overrides": {v: list(variant(v).overrides) for v in variants},
              "downstream": ds_rows, "downstream_values": ds_table,
              "downstream_comparisons": [c.__dict__ for c in ds_comps]}
    report = portable_paths(report, out)      # committed reports name no machine paths (relative to out/ or the repo)
    ds_verdict = downstream_verdict(report["downstream"], ds_table, ds_comps)
    md = markdown(report, comps, seeds, floor_note, plots, ds_verdict)
    report["verdict"] = verdict_text(comps, variants, seeds, plan.steps, floor_note, ds_verdict)
    out.mkdir(parents=True, exist_ok=True)
    if plots and results:
        write_plots(out, report, results)
    if plots and any(r["result"] for r in ds_rows):
        downstream_plot(ds_rows, ds_table, out / "plots" / DOWNSTREAM_PLOT)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(out / "report.md", md)
    log.info("report: %s (%d of %d runs evaluated)", out / "report.md", len(results), len(runs))
    return report


def run_results(plan: Plan, settings) -> tuple[list[dict], list[dict]]:
    """(the cached results evaluated with `settings`, one status row per run of the plan)."""
    results, status = [], []
    for r in plan.runs():
        res = load_result(r, settings)
        st = run_status(r, plan.steps)
        if st == "done" and res is None:
            st = "trained"                  # evaluated with other settings: needs re-evaluation
        status.append({"run": r.key, "variant": r.variant.name, "seed": r.seed, "status": st,
                       "train": (res or {}).get("train", {}), "eval_seconds": (res or {}).get("eval_seconds"),
                       "eval_cpu_seconds": (res or {}).get("eval_cpu_seconds")})
        if res is not None:
            results.append(res)
    return results, status


def _settings_dict(settings) -> dict:
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
              "downstream TTS effect is measured per codec seed with one TTS run each, at a small budget (see "
              "Downstream TTS).")
    else:
        s += ("Listening quality, GAN-trained codecs, out-of-domain speech and the downstream TTS effect are not "
              "measured by these rows.")
    if missing:
        s += f" Not finished (left out of every number): {', '.join(missing)}."
    return s


def markdown(report: dict, comps: list[Comparison], seeds: dict, floor_note: str, plots: bool,
             ds_verdict: list[str] = ()) -> str:
    variants = report["variants"]
    L = _runs_section(report)
    L += ["", "## Verdict", ""] + verdict_text(comps, variants, seeds, report["steps"], floor_note, ds_verdict)
    L += downstream_markdown(report["downstream"], report["downstream_values"], plots)
    L += _clean_tables(report) + _noisy_tables(report) + _flip_tables(report) + _stage_table(report)
    if plots:
        L += ["", "## Plots", ""] + [f"![{p[:-4]}](plots/{p})" for p in PLOTS]
    return "\n".join(L) + "\n"


def _runs_section(report: dict) -> list[str]:
    """Title, setting, the runs' status and cost, the variants' overrides."""
    st = report["settings"]
    L = ["# NDVQ vs RVQ ablation", "",
         f"{report['steps']} training steps per run, seeds {report['seeds']}; held-out unseen speakers: "
         f"{st.get('items')} utterances of `{st.get('manifest')}` (speaker-balanced), robustness on the first "
         f"{st.get('robust_items')}. Mean ± std over seeds of the per-run means over utterances; `missing` = "
         "no finished run. PESQ-WB/STOI at 16 kHz; mel L1 lower is better. Pitch (when measured): each row's "
         "F0 track against the recording's, pooled over frames (data_prep.pitch): F0 error in cents and its share "
         "within 50 cents on frames voiced in both, gross pitch error (GPE), voicing decision error (VDE).", "",
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
    L += [f"| {v} | `{' '.join(report['overrides'][v])}` |" for v in report["variants"]]
    dep = report["departures_ndvq_from_authors"]
    if dep:
        L += ["", "`ndvq` (this project's defaults) departs from the authors' quantizer in: "
              + ", ".join(f"`{k}` {b!r} instead of {a!r}" for k, (a, b) in dep.items()) + "."]
    return L


def _clean_tables(report: dict) -> list[str]:
    keys, bws, variants, vals = report["keys"], report["bandwidths"], report["variants"], report["values"]
    L = []
    for k in [*keys, *report.get("pitch_keys", [])]:
        L += ["", f"## {TITLES.get(k, k)}{' (lower is better)' if not HIGHER_IS_BETTER.get(k, True) else ''}, clean input",
              "", "| variant | " + " | ".join(f"{b:g} kbps" for b in bws) + " | unquantized | no information |",
              "|---|" + "---|" * (len(bws) + 2)]
        for v in variants:
            cells = [fmt_seeds(vals.get(f"clean|{k}|{b:g}", {}).get(v)) for b in bws]
            cells += [fmt_seeds(vals.get(f"clean|{k}|{t}", {}).get(v)) for t in ("unquantized", "no_information")]
            L.append(f"| {v} | " + " | ".join(cells) + " |")
    return L


def _noisy_tables(report: dict) -> list[str]:
    keys, variants, vals = report["keys"], report["variants"], report["values"]
    noisy = sorted({n.split("|", 2)[2] for n in vals if n.startswith("noisy|")})
    if not noisy:
        return []
    L = []
    for k in [k for k in keys if any(n.startswith(f"noisy|{k}|") for n in vals)]:
        L += ["", f"## {TITLES.get(k, k)}, noisy input (condition dB @ kbps)", "",
              "| variant | " + " | ".join(noisy) + " |", "|---|" + "---|" * len(noisy)]
        L += [f"| {v} | " + " | ".join(fmt_seeds(vals.get(f"noisy|{k}|{c}", {}).get(v)) for c in noisy) + " |"
              for v in variants]
    return L


def _flip_tables(report: dict) -> list[str]:
    variants, vals = report["variants"], report["values"]
    L = []
    for kind, title in (("flips_input", "input noise (dB)"), ("flips_latent", "Gaussian latent noise (x latent std)")):
        conds = sorted({n.split("|")[1] for n in vals if n.startswith(kind + "|")}, key=num_key)
        if conds:
            L += ["", f"## Code flips under {title}: mean over stages (stage 1)", "",
                  "| variant | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
            L += [f"| {v} | " + " | ".join(f"{fmt_seeds(vals.get(f'{kind}|{c}', {}).get(v))} "
                                          f"({fmt_seeds(vals.get(f'{kind}_stage1|{c}', {}).get(v))})" for c in conds)
                  + " |" for v in variants]
    return L


def _stage_table(report: dict) -> list[str]:
    variants, vals = report["variants"], report["values"]
    stages = sorted({int(n.split("|")[2]) for n in vals if n.startswith("stage|used|")})
    if not stages:
        return []
    L = ["", "## Code statistics per stage (clean evaluation utterances, all stages)", "",
         "Used codes, perplexity; NDVQ: median sigma of the used codes / std of the stage's residual.", "",
         "| variant | " + " | ".join(f"stage {s}" for s in stages) + " |", "|---|" + "---|" * len(stages)]
    for v in variants:
        cells = []
        for s in stages:
            c = f"{fmt_seeds(vals.get(f'stage|used|{s}', {}).get(v), 0)} / {fmt_seeds(vals.get(f'stage|perplexity|{s}', {}).get(v), 0)}"
            sig = vals.get(f"stage|sigma_rel|{s}", {}).get(v)
            cells.append(c + (f" / σ {fmt_seeds(sig, 2)}" if sig else ""))
        L.append(f"| {v} | " + " | ".join(cells) + " |")
    return L
