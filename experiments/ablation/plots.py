"""The ablation's plots (PNG, in <out>/plots/): seed spread as error bars everywhere.

metrics_vs_bitrate.png   each metric against bitrate per variant, the no-information floor dotted
robustness.png           each metric at the top bitrate: clean, then each noise condition
flips.png                code flips (mean over stages) against latent noise level and input condition
code_usage.png           per variant: sorted code counts of stage 1 (first seed), used codes per stage
learning_curves.png      training mel loss against step (moving average of 25 steps), mean over seeds and
                         the seeds' range, per variant (from each run's losses.jsonl)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.io import iter_jsonl

from .report import PLOTS, TITLES, _num_key, mean_std, save_png

SMOOTH_STEPS = 25


def _ms(vals):
    m, s, n = mean_std(vals or [])
    return m, (0.0 if not np.isfinite(s) else s)


def write_plots(out: Path, report: dict, results: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pdir = Path(out) / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    vals, keys, bws, variants = report["values"], report["keys"], report["bandwidths"], report["variants"]
    present = [v for v in variants if any(r["variant"] == v for r in results)]
    colors = {v: f"C{i}" for i, v in enumerate(variants)}

    # metrics vs bitrate
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), squeeze=False)
    for ax, k in zip(axes[0], keys):
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
    fig.tight_layout()
    save_png(fig, pdir / PLOTS[0])
    plt.close(fig)

    # robustness at the top bitrate
    conds = sorted({n.split("|")[2] for n in vals if n.startswith("noisy|")})
    top = max((float(n.split("|")[3]) for n in vals if n.startswith("noisy|")), default=None)
    if top is not None:
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
        fig.tight_layout()
        save_png(fig, pdir / PLOTS[1])
        plt.close(fig)

    # flips
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), squeeze=False)
    for ax, kind, title in ((axes[0][0], "flips_latent", "latent noise (x latent std)"),
                            (axes[0][1], "flips_input", "input noise (dB SNR)")):
        cs = sorted({n.split("|")[1] for n in vals if n.startswith(kind + "|")}, key=_num_key)
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
    fig.tight_layout()
    save_png(fig, pdir / PLOTS[2])
    plt.close(fig)

    # code usage
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
    fig.tight_layout()
    save_png(fig, pdir / PLOTS[3])
    plt.close(fig)

    # learning curves: training mel loss per step (the budget is steps, so the x axes agree)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for v in present:
        curves = []
        for r in (r for r in results if r["variant"] == v):
            path = Path(out) / "runs" / v / f"seed{r['seed']}" / "losses.jsonl"
            mel = [row["mel"] for row in iter_jsonl(path) if not row.get("skipped")] if path.is_file() else []
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
    fig.tight_layout()
    save_png(fig, pdir / PLOTS[4])
    plt.close(fig)
