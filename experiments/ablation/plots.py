"""The ablation's plots (PNG, in <out>/plots/): seed spread as error bars everywhere.

metrics_vs_bitrate.png   each metric against bitrate per variant, the no-information floor dotted
robustness.png           each metric at the top bitrate: clean, then each noise condition
flips.png                code flips (mean over stages) against latent noise level and input condition
code_usage.png           per variant: sorted code counts of stage 1 (first seed), used codes per stage
learning_curves.png      training mel loss against step (moving average of 25 steps), mean over seeds and
                         the seeds' range, per variant (from each run's losses.jsonl)
downstream_tts.png       downstream TTS WER, PER and SIM per variant (mean ± sd over seeds, dots: seeds),
                         with its codec's resynthesis
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.io import atomic_path, iter_jsonl

from .downstream import row_value
from .summary import TITLES, mean_std, num_key

PLOTS = ("metrics_vs_bitrate.png", "robustness.png", "flips.png", "code_usage.png", "learning_curves.png")
DOWNSTREAM_PLOT = "downstream_tts.png"
SMOOTH_STEPS = 25


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def _finish(plt, fig, path: Path) -> None:
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def _ms(vals):
    m, s, n = mean_std(vals or [])
    return m, (0.0 if not np.isfinite(s) else s)


def write_plots(out: Path, report: dict, results: list[dict]) -> None:
    """Every PLOTS file of the report (`report`: report.json's dict; `results`: the runs' result.json)."""
    plt = _pyplot()
    pdir = Path(out) / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    vals, keys, bws, variants = report["values"], report["keys"], report["bandwidths"], report["variants"]
    present = [v for v in variants if any(r["variant"] == v for r in results)]
    colors = {v: f"C{i}" for i, v in enumerate(variants)}
    _metrics_vs_bitrate(plt, pdir / PLOTS[0], vals, [*keys, *report.get("pitch_keys", [])], bws, present, colors)
    _robustness(plt, pdir / PLOTS[1], vals, keys, present, colors)
    _flips(plt, pdir / PLOTS[2], vals, present, colors)
    _code_usage(plt, pdir / PLOTS[3], vals, results, present, colors)
    _learning_curves(plt, pdir / PLOTS[4], Path(out), results, present, colors)


def _metrics_vs_bitrate(plt, path, vals, keys, bws, present, colors) -> None:
    cols = min(len(keys), 5)                    # audio metrics, then the pitch scores: rows of at most 5
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, k in zip(axes.flat, keys):
        for i, v in enumerate(present):
            pts = [(b, *_ms(vals.get(f"clean|{k}|{b:g}", {}).get(v))) for b in bws]
            pts = [p for p in pts if np.isfinite(p[1])]
            if pts:
                x = np.array([p[0] for p in pts]) * (1 + 0.02 * (i - len(present) / 2))   # dodge
                ax.errorbar(x, [p[1] for p in pts], [p[2] for p in pts], fmt="o-", capsize=3, color=colors[v], label=v)
            fl = vals.get(f"clean|{k}|no_information", {}).get(v)
            if fl:
                ax.axhline(_ms(fl)[0], color=colors[v], ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(bws, [f"{b:g}" for b in bws])
        ax.minorticks_off()
        ax.set_xlabel("kbps")
        ax.set_title(TITLES.get(k, k) + " (dotted: no information)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    _finish(plt, fig, path)


def _robustness(plt, path, vals, keys, present, colors) -> None:
    """Each metric at the top bitrate of the noisy rows: clean, then each condition (none: no plot)."""
    conds = sorted({n.split("|")[2] for n in vals if n.startswith("noisy|")})
    top = max((float(n.split("|")[3]) for n in vals if n.startswith("noisy|")), default=None)
    if top is None:
        return
    labels = ["clean"] + conds
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), squeeze=False)
    for ax, k in zip(axes[0], keys):
        for i, v in enumerate(present):
            ys = [_ms(vals.get(f"clean|{k}|{top:g}", {}).get(v))] + \
                 [_ms(vals.get(f"noisy|{k}|{c}|{top:g}", {}).get(v)) for c in conds]
            ax.errorbar(np.arange(len(labels)) + 0.06 * i, [y[0] for y in ys], [y[1] for y in ys], fmt="o-",
                        capsize=3, color=colors[v], label=v)
        ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        ax.set_title(f"{TITLES.get(k, k)} @ {top:g} kbps, vs clean ref", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    _finish(plt, fig, path)


def _flips(plt, path, vals, present, colors) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), squeeze=False)
    for ax, kind, title in ((axes[0][0], "flips_latent", "latent noise (x latent std)"),
                            (axes[0][1], "flips_input", "input noise (dB SNR)")):
        cs = sorted({n.split("|")[1] for n in vals if n.startswith(kind + "|")}, key=num_key)
        for i, v in enumerate(present):
            ys = [_ms(vals.get(f"{kind}|{c}", {}).get(v)) for c in cs]
            x = [float(c) for c in cs] if kind == "flips_latent" else np.arange(len(cs)) + 0.06 * i
            ax.errorbar(x, [y[0] for y in ys], [y[1] for y in ys], fmt="o-", capsize=3, color=colors[v], label=v)
        if kind == "flips_latent" and cs:
            ax.set_xscale("log")
            ax.set_xticks([float(c) for c in cs], cs)
            ax.minorticks_off()
        elif cs:
            ax.set_xticks(range(len(cs)), cs, rotation=30, fontsize=7)
        ax.set_title(f"code flips (mean over stages) vs {title}", fontsize=9)
        ax.set_ylim(0, None)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    _finish(plt, fig, path)


def _code_usage(plt, path, vals, results, present, colors) -> None:
    fig, axes = plt.subplots(len(present), 2, figsize=(9, 2.2 * len(present)), squeeze=False)
    for row, v in zip(axes, present):
        first = next(r for r in results if r["variant"] == v)
        c = np.asarray(first["codestats"][0]["counts_sorted"])
        row[0].bar(np.arange(c.size), c, width=1.0, color=colors[v])
        row[0].set_yscale("symlog")
        row[0].set_title(f"{v} seed {first['seed']}: stage 1 code counts, sorted", fontsize=8)
        stages = sorted({int(n.split("|")[2]) for n in vals if n.startswith("stage|used|")})
        ys = [_ms(vals.get(f"stage|used|{s}", {}).get(v)) for s in stages]
        row[1].bar(stages, [y[0] for y in ys], yerr=[y[1] for y in ys], color=colors[v], capsize=2)
        row[1].axhline(first["codebook_size"], color="k", ls=":", lw=1)
        row[1].set_title(f"{v}: used codes per stage (of {first['codebook_size']})", fontsize=8)
        for ax in row:
            ax.tick_params(labelsize=7)
    _finish(plt, fig, path)


def _learning_curves(plt, path, out: Path, results, present, colors) -> None:
    """Training mel loss per step (the budget is steps, so the x axes agree)."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for v in present:
        curves = []
        for r in (r for r in results if r["variant"] == v):
            losses = out / "runs" / v / f"seed{r['seed']}" / "losses.jsonl"
            mel = [row["mel"] for row in iter_jsonl(losses) if not row.get("skipped")] if losses.is_file() else []
            if len(mel) >= SMOOTH_STEPS:
                curves.append(np.convolve(mel, np.ones(SMOOTH_STEPS) / SMOOTH_STEPS, mode="valid"))
        if curves:
            n = min(len(c) for c in curves)
            c = np.stack([c[:n] for c in curves])
            x = np.arange(n) + SMOOTH_STEPS
            ax.plot(x, c.mean(0), color=colors[v], label=f"{v} ({len(curves)} seeds)")
            ax.fill_between(x, c.min(0), c.max(0), color=colors[v], alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(f"training mel loss (mean of {SMOOTH_STEPS} steps)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:       # runs shorter than the smoothing window draw no curve
        ax.legend(fontsize=7)
    _finish(plt, fig, path)


def downstream_plot(rows: list[dict], table: dict, path: Path) -> None:
    """TTS and codec-resynthesis WER, PER and SIM per variant: mean over seeds with the seeds' sd as error
    bars and each seed as a dot, with the ground-truth and different-speaker floor lines."""
    plt = _pyplot()
    done = [r["result"] for r in rows if r["result"]]
    first = done[0]
    names = [v for v in dict.fromkeys(r["variant"] for r in rows) if any(v in table.get(f"tts|{k}", {})
                                                                       for k in ("wer", "per", "sim"))]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(5 + 2.2 * len(names), 3.6))
    for ax, key, title in ((axes[0], "wer", "WER (lower is better)"), (axes[1], "per", "PER (lower is better)"),
                           (axes[2], "sim", "speaker SIM to the prompt")):
        for off, row, label, color in ((-0.2, "tts", "TTS", "C0"), (0.2, "resynthesis", "codec resynthesis", "C1")):
            per = table.get(f"{row}|{key}", {})
            ms = [_ms(per.get(v)) for v in names]
            ax.bar(x + off, [m for m, _ in ms], yerr=[s for _, s in ms], width=0.4, capsize=3, label=label,
                   color=color, alpha=0.7)
            for i, v in enumerate(names):
                ys = per.get(v) or []
                ax.plot(np.full(len(ys), x[i] + off), ys, "k.", ms=4)
        gt = row_value(first, "ground_truth", key)
        if gt is not None:
            ax.axhline(gt, color="k", ls="--", lw=1, label="ground truth")
        if key == "sim" and first.get("sim_floor") is not None:
            ax.axhline(first["sim_floor"], color="r", ls=":", lw=1, label="other-speaker floor")
        ax.set_xticks(x, names, rotation=20, ha="right")
        ax.set_title(title)
    axes[2].legend(fontsize=7, loc="lower right")
    seeds = sorted({r["seed"] for r in rows if r["result"]})
    fig.suptitle(f"Downstream TTS per quantizer ({first['budget']}; mean ± sd over seeds "
                 f"{', '.join(map(str, seeds))}, dots: seeds)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, path)
    plt.close(fig)
