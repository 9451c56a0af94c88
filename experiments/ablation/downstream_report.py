"""The Downstream TTS part of the ablation report: rows, table and verdict paragraph.

One row per variant from <out>/downstream/<variant>/result.json (experiments/ablation/downstream.py); the
report (experiments/ablation/report.py) places the table after the audio sections and the paragraph in its
verdict; its plot is plots.downstream_plot.
"""
from __future__ import annotations

from .downstream import DOWNSTREAM, load, row_value, status, variant_dir
from .plan import BASELINE, Plan
from .plots import DOWNSTREAM_PLOT
from .summary import fmt_num


def downstream_rows(plan: Plan, settings=None) -> list[dict]:
    """One row per variant: {variant, status, result}; [] when no downstream was asked for or run."""
    if settings is None and not (plan.out / DOWNSTREAM).is_dir():
        return []
    rows = []
    for v in plan.variants:
        res = load(variant_dir(plan.out, v), settings)
        if res is not None:
            st = "done"
        elif settings is not None:
            st = status(plan, v, settings)
        else:
            st = "partial" if variant_dir(plan.out, v).is_dir() else "missing"
        rows.append({"variant": v, "status": st, "result": res})
    return rows


def downstream_markdown(rows: list[dict], plots: bool) -> list[str]:
    if not rows:
        return []
    done = [r["result"] for r in rows if r["result"]]
    first = done[0] if done else None
    L = ["", "## Downstream TTS (one codec seed, the same TTS budget per variant)", ""]
    if first:
        budgets = sorted({r["budget"] for r in done})
        L += [f"The mini TTS (egs/libritts/run.sh stages 4-8 unchanged) trained on each variant's code dump "
              f"(codec run seed {first['settings']['seed']}), {' / '.join(budgets)}; zero-shot synthesis of "
              f"{first.get('n_items')} test items from {first.get('n_speakers')} unseen speakers, scored by stage 8: "
              f"WER from {first.get('asr')}{' (a constrained setting)' if first.get('asr_constrained') else ''}; "
              f"SIM = cosine of {first.get('speaker_encoder')} embeddings to the prompt. Resynthesis = the "
              f"variant's codec at the TTS's {first.get('n_q')} codebooks. One seed and a small budget: "
              "differences are indications, not a ranking.", ""]
    L += ["| variant | status | TTS WER | TTS SIM | resynthesis WER | resynthesis SIM | AR dev top-1 | TTS budget "
          "| min: wall (CPU) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        res = r["result"]
        if not res:
            L.append(f"| {r['variant']} | {r['status']} | missing | missing | missing | missing | - | - | - |")
            continue
        top1 = (res.get("tts", {}).get("ar", {}).get("valid_top1") or {}).get("acc_k1")
        cost = (f"{res['seconds'] / 60:.1f} ({res['cpu_seconds'] / 60:.1f})"
                if res.get("seconds") is not None and res.get("cpu_seconds") is not None else "-")
        L.append(f"| {r['variant']} | done | {fmt_num(row_value(res, 'tts', 'wer'))} | {fmt_num(row_value(res, 'tts', 'sim'))} | "
                 f"{fmt_num(row_value(res, 'resynthesis', 'wer'))} | {fmt_num(row_value(res, 'resynthesis', 'sim'))} | "
                 f"{fmt_num(top1)} | {res['budget']} | {cost} |")
    if first:
        L.append(f"| ground truth (recordings) | - | {fmt_num(row_value(first, 'ground_truth', 'wer'))} | "
                 f"{fmt_num(row_value(first, 'ground_truth', 'sim'))} (same-speaker ceiling) | - | - | - | - | - |")
        L.append(f"| SIM floor (prompt vs other speakers) | - | - | {fmt_num(first.get('sim_floor'))} | - | - | - | - | - |")
        L += ["", "Per-variant stage 8 reports: " + ", ".join(f"`{r['report']}`" for r in done) + "."]
        if plots:
            L += ["", f"![downstream](plots/{DOWNSTREAM_PLOT})"]
    return L


def downstream_verdict(rows: list[dict]) -> list[str]:
    """The downstream paragraph of the verdict, generated from the rows (empty without rows)."""
    if not rows:
        return []
    done = {r["variant"]: r["result"] for r in rows if r["result"]}
    missing = [r["variant"] for r in rows if not r["result"]]
    if not done:
        return [f"**Downstream TTS**: no variant finished yet (missing: {', '.join(missing)}).", ""]
    first = next(iter(done.values()))
    wer = {v: row_value(res, "tts", "wer") for v, res in done.items()}
    sim = {v: row_value(res, "tts", "sim") for v, res in done.items()}
    s = (f"**Downstream TTS** (codec seed {first['settings']['seed']}, {first['budget']}, one TTS run per variant, "
         f"{first.get('n_items')} items): TTS WER " + ", ".join(f"{v} {fmt_num(w)}" for v, w in wer.items())
         + "; SIM " + ", ".join(f"{v} {fmt_num(x)}" for v, x in sim.items()) + ".")
    if BASELINE in done:
        diffs = [f"{v} WER {wer[v] - wer[BASELINE]:+.3f}, SIM {sim[v] - sim[BASELINE]:+.3f}"
                 for v in done if v != BASELINE and None not in (wer[v], wer[BASELINE], sim[v], sim[BASELINE])]
        if diffs:
            s += f" Against {BASELINE}: " + "; ".join(diffs) + "."
    floor = first.get("sim_floor")
    if floor is not None and all(x is not None for x in sim.values()):
        above = [v for v, x in sim.items() if x > floor]
        s += (f" TTS SIM above the different-speaker floor ({floor:.3f}): "
              + (", ".join(above) if above else "none (no speaker identity carried over at this budget)") + ".")
    resyn = {v: row_value(res, "resynthesis", "wer") for v, res in done.items()}
    if all(w is not None for w in list(wer.values()) + list(resyn.values())):
        worse = [v for v in done if wer[v] > resyn[v]]
        s += f" TTS WER above its own codec's resynthesis WER: {len(worse)} of {len(done)} variants."
    s += (" Caveat: one codec seed and one TTS run per variant, with no seed spread to judge a difference by, and a "
          "budget far below the paper's: these rows show whether each quantizer's codes can be modelled at all at "
          "this size, not which quantizer makes the better TTS.")
    if missing:
        s += f" Not finished: {', '.join(missing)}."
    return [s, ""]
