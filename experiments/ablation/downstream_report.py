"""The Downstream TTS part of the ablation report: rows, table, verdict paragraph and plot.

One row per variant from <out>/downstream/<variant>/result.json (experiments/ablation/downstream.py); the
report (experiments/ablation/report.py) places the table after the audio sections and the paragraph in its
verdict.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .plan import BASELINE, Plan

DOWNSTREAM_PLOT = "downstream_tts.png"


def downstream_rows(plan: Plan, settings=None) -> list[dict]:
    """One row per variant: {variant, status, result}; [] when no downstream was asked for or run."""
    from .downstream import DOWNSTREAM, load, status, variant_dir
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


def fmt_num(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _tts(res: dict, row: str, key: str):
    return (res.get("rows", {}).get(row) or {}).get(key)


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
        L.append(f"| {r['variant']} | done | {fmt_num(_tts(res, 'tts', 'wer'))} | {fmt_num(_tts(res, 'tts', 'sim'))} | "
                 f"{fmt_num(_tts(res, 'resynthesis', 'wer'))} | {fmt_num(_tts(res, 'resynthesis', 'sim'))} | "
                 f"{fmt_num(top1)} | {res['budget']} | {cost} |")
    if first:
        L.append(f"| ground truth (recordings) | - | {fmt_num(_tts(first, 'ground_truth', 'wer'))} | "
                 f"{fmt_num(_tts(first, 'ground_truth', 'sim'))} (same-speaker ceiling) | - | - | - | - | - |")
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
    wer = {v: _tts(res, "tts", "wer") for v, res in done.items()}
    sim = {v: _tts(res, "tts", "sim") for v, res in done.items()}
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
    resyn = {v: _tts(res, "resynthesis", "wer") for v, res in done.items()}
    if all(w is not None for w in list(wer.values()) + list(resyn.values())):
        worse = [v for v in done if wer[v] > resyn[v]]
        s += f" TTS WER above its own codec's resynthesis WER: {len(worse)} of {len(done)} variants."
    s += (" Caveat: one codec seed and one TTS run per variant, with no seed spread to judge a difference by, and a "
          "budget far below the paper's: these rows show whether each quantizer's codes can be modelled at all at "
          "this size, not which quantizer makes the better TTS.")
    if missing:
        s += f" Not finished: {', '.join(missing)}."
    return [s, ""]


def downstream_plot(rows: list[dict], path: Path) -> None:
    """Bars of TTS WER and SIM per finished variant, with the ground-truth and floor lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [(r["variant"], r["result"]) for r in rows if r["result"]]
    first = done[0][1]
    names = [v for v, _ in done]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.6 * len(names), 3.6))
    for ax, key, title in ((axes[0], "wer", "WER (lower is better)"), (axes[1], "sim", "speaker SIM to the prompt")):
        for off, row, label in ((-0.2, "tts", "TTS"), (0.2, "resynthesis", "codec resynthesis")):
            vals = [_tts(res, row, key) for _, res in done]
            ax.bar(x + off, [np.nan if v is None else v for v in vals], width=0.4, label=label)
        gt = _tts(first, "ground_truth", key)
        if gt is not None:
            ax.axhline(gt, color="k", ls="--", lw=1, label="ground truth")
        if key == "sim" and first.get("sim_floor") is not None:
            ax.axhline(first["sim_floor"], color="r", ls=":", lw=1, label="other-speaker floor")
        ax.set_xticks(x, names, rotation=20, ha="right")
        ax.set_title(title)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Downstream TTS per quantizer ({first['budget']}, one seed)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .report import save_png        # here: report imports this module
    save_png(fig, path)
    plt.close(fig)
