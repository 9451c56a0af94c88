"""The plots of a tts.evaluate report: scores.png (per-item scores of every row), spectrograms.png (log-mel
of one item's prompt, recording and outputs) and pitch_spectrograms.png (narrowband, 0-1.5 kHz, of the
items with the highest- and the lowest-pitched recording: prompt, recording, resynthesis, TTS)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from core.io import atomic_path
from data_prep.audio import load_audio

log = logging.getLogger(__name__)

ROW_TITLES = {"ground_truth": "ground truth", "resynthesis": "codec resynthesis",
              "gt_cb1_nar": "ground-truth codebook 1 + NAR", "tts": "TTS (zero-shot)"}


def plot_scores(report, path: Path) -> bool:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(report.rows)
    panels = [("WER per utterance", lambda r: r.get("wer")), ("PER per utterance", lambda r: r.get("per")),
              ("SIM to prompt", lambda r: r.get("sim")),
              ("DNSMOS ovrl", lambda r: (r.get("dnsmos") or {}).get("ovrl")),
              ("median F0 vs the prompt's (semitones)", lambda r: (r.get("pitch") or {}).get("st_from_prompt"))]
    data = []
    for title, get in panels:
        vals = [[get(it[n]) for it in report.items if n in it and get(it[n]) is not None
                 and np.isfinite(get(it[n]))] for n in names]
        if any(vals):
            data.append((title, vals))
    if not data:
        return False
    fig, axes = plt.subplots(1, len(data), figsize=(4.6 * len(data), 3.8), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (title, vals) in zip(axes[0], data):
        keep = [(n, v) for n, v in zip(names, vals) if v]
        ax.boxplot([v for _, v in keep], showfliers=False)
        for k, (_, v) in enumerate(keep, 1):
            ax.scatter(k + rng.uniform(-0.12, 0.12, len(v)), v, s=10, alpha=0.6)
        ax.set_xticks(range(1, len(keep) + 1), [ROW_TITLES.get(n, n).replace(" (zero-shot)", "") for n, _ in keep],
                      rotation=15)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if title.startswith("SIM"):
            floors = getattr(report, "floors", None) or {}
            for key, color, label in (("different_speaker", "gray", "different-speaker floor"),
                                      ("codec_different_speaker", "tab:red", "codec-domain floor"),
                                      ("nearest_training_voice", "tab:green", "nearest training voice")):
                v = (floors.get(key) or {}).get("sim", report.sim_floor if key == "different_speaker" else None)
                if v is not None:
                    ax.axhline(v, color=color, ls="--", lw=1, label=label)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="lower left")
        if title.startswith("median F0"):
            for y in (-2.0, 2.0):
                ax.axhline(y, color="gray", ls=":", lw=1)
    fig.suptitle(f"{report.setting['n_items']} items, one scoring stack")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return True


def plot_spectrograms(report, items, path: Path) -> bool:
    """Prompt / ground truth / (ground-truth codebook 1 + NAR) / TTS output of the first item that has the
    prompt, the recording and the output, on one time axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for it, rec in zip(items, list(report.items) + [{}] * len(items)):
        srcs = [("prompt", it.prompt_wav), ("ground truth", it.ref_wav), ("TTS output", it.out_wav)]
        if all(p and Path(p).is_file() for _, p in srcs):
            nar = (rec.get("gt_cb1_nar") or {}).get("wav")
            if nar and Path(nar).is_file():
                srcs.insert(2, ("GT codebook 1 + NAR", nar))
            break
    else:
        return False
    fig = _spectrogram_figure(srcs, f"{it.id}: \u201c{it.text[:90]}\u201d")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return True


def _spectrogram_figure(srcs: list[tuple[str, str]], title: str, sr: int = 24000):
    """One panel per (title, wav path), all on the same seconds axis (0 .. the longest), so a 2.3 s
    output is drawn shorter than a 4.0 s recording instead of stretched to its width."""
    import matplotlib.pyplot as plt
    from codec.evaluation.metrics import log_mel_spectrogram
    wavs = [load_audio(p, sample_rate=sr)[0] for _, p in srcs]
    span = max(len(w) for w in wavs) / sr
    fig, axes = plt.subplots(1, len(srcs), figsize=(13, 3.4), sharex=True, sharey=True)
    for ax, (name, _), wav in zip(axes, srcs, wavs):
        m = log_mel_spectrogram(wav, sr)  # [80, frames] log10
        ax.imshow(m, origin="lower", aspect="auto", cmap="magma",
                  extent=[0, len(wav) / sr, 0, m.shape[0]], vmin=m.max() - 5, vmax=m.max())
        ax.set_xlim(0, span)
        ax.set_title(f"{name} ({len(wav) / sr:.1f} s)")
        ax.set_xlabel("s")
    axes[0].set_ylabel("mel bin")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_pitch(report, items, path: Path) -> bool:
    """Narrowband spectrograms (codec.evaluation.pitch) of the items whose recording has the highest and the
    lowest median F0: prompt, ground truth, codec resynthesis and TTS output, each with its F0 track."""
    from codec.evaluation.pitch import plot_narrowband
    from data_prep.pitch import track_f0

    from .pitch import female_male_items
    meds = [((rec.get("ground_truth") or {}).get("pitch") or {}).get("f0_median") for rec in report.items]
    picks = female_male_items(meds)
    if not picks:
        return False
    columns, f0 = [], {}
    for c, i in enumerate(picks):
        it, rec = items[i], report.items[i]
        srcs = [("prompt", it.prompt_wav), ("ground truth", it.ref_wav),
                ("codec resynthesis", (rec.get("resynthesis") or {}).get("wav")), ("TTS", it.out_wav)]
        panels = []
        for r, (name, p) in enumerate((n, p) for n, p in srcs if p and Path(p).is_file()):
            wav, sr = load_audio(p)
            panels.append((name, wav, sr))
            f0[(c, r)] = track_f0(wav, sr)
        columns.append((f"{it.id} ({'highest' if c == 0 else 'lowest'}-pitched recording)", panels))
    plot_narrowband(path, columns, f0)
    return True
