"""The codec evaluation's results (rows, code usage, one record per checkpoint) and how they are shown:
the Markdown report, the plots (metrics_vs_bitrate.png, code_usage.png, spectrogram.png) and the
learning curve of a training run. codec/evaluate.py computes the results; this module only reads them.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from core.io import atomic_path

import codec.evaluation.metrics as M
from codec.evaluation.pitch import PITCH_KEYS, PITCH_TITLES, female_male, fmt_pitch, plot_narrowband

RowKind = Literal["codes", "unquantized", "no_information", "oracle_random", "oracle_griffin_lim"]
ROW_TITLES = {"unquantized": "unquantized latent", "no_information": "no information (mean latent)",
              "oracle_random": "true STFT magnitude, random phase",
              "oracle_griffin_lim": "true STFT magnitude, Griffin-Lim phase"}
PLOT_NAMES = ("metrics_vs_bitrate.png", "code_usage.png", "spectrogram.png")
PITCH_PLOT = "pitch_spectrogram.png"     # narrowband: a female and a male voice, recording and two bitrates
CURVE_PLOT = "learning_curve.png"        # with --exp-dir: the run's training loss and the scored checkpoints


# ------------------------------------------------------------------------------------------ results
@dataclass
class Row:
    """One row of the table: the scores of one way of producing audio, over the same utterances."""
    kind: RowKind
    kbps: Optional[float] = None            # the bandwidth asked for (nominal: "1.5")
    n_q: Optional[int] = None
    scores: dict[str, Optional[dict[str, float]]] = field(default_factory=dict)   # key -> {mean, std, n} | None
    actual_kbps: Optional[float] = None     # what the codes take: n_q x frame rate x bits ("1.2")
    pitch: Optional[dict] = None            # pooled F0 scores vs the recordings (codec.evaluation.pitch.row_pitch)

    @property
    def rate(self) -> Optional[float]:
        """The rate to show: the actual one (older results: the nominal one)."""
        return self.actual_kbps if self.actual_kbps is not None else self.kbps

    @property
    def name(self) -> str:
        return _rate_name(self.kbps, self.actual_kbps) if self.kind == "codes" else ROW_TITLES[self.kind]


def _rate_name(nominal: Optional[float], actual: Optional[float]) -> str:
    """A bitrate row's name: its actual rate, the requested bandwidth beside it when they differ."""
    if actual is None or nominal is None or abs(actual - nominal) < 1e-6:
        return f"{actual if actual is not None else nominal:g} kbps"
    return f"{actual:g} kbps (asked {nominal:g})"


@dataclass
class StageUsage:
    stage: int
    codes_used: int
    unused: int
    perplexity: float
    residual_rms_rel: float


@dataclass
class CheckpointResult:
    checkpoint: str
    step: str
    sha256: str
    rows: list[Row]
    usage: list[StageUsage] = field(default_factory=list)     # the fully evaluated checkpoint only
    codebook_size: int = 0
    frames: int = 0


# ------------------------------------------------------------------------------------------ Markdown
KEY_TITLES = {"pesq": "PESQ-WB", "stoi": "STOI", "si_sdr": "SI-SDR (dB)", "mel": "mel L1", "visqol": "ViSQOL",
              "dnsmos_ovrl": "DNSMOS ovrl", "dnsmos_sig": "DNSMOS sig", "dnsmos_bak": "DNSMOS bak",
              "dnsmos_p808": "DNSMOS P.808"}


def _fmt(s: Optional[dict], std: bool = True) -> str:
    if s is None:
        return "missing"
    if not s["n"]:
        return "n/a"
    return f"{s['mean']:.3f} ± {s['std']:.3f}" if std else f"{s['mean']:.3f}"


def _fmt_scores(row: Row | dict, keys: list[str]) -> str:
    scores = row.scores if isinstance(row, Row) else row["scores"]
    pitch = row.pitch if isinstance(row, Row) else row.get("pitch")
    text = ", ".join(f"{k} {_fmt(scores.get(k), std=False)}" for k in keys)
    if pitch:
        text += ", " + ", ".join(f"{k} {c}" for k, c in zip(PITCH_KEYS, fmt_pitch(pitch)))
    return text


def _row_name(r: dict) -> str:
    return _rate_name(r["kbps"], r.get("actual_kbps")) if r["kind"] == "codes" else ROW_TITLES[r["kind"]]


def markdown_report(report: dict, plots: bool = True, plot_dir: str = "eval") -> str:
    keys, cks = report["keys"], report["checkpoints"]
    last = cks[-1]
    heads = " | ".join(KEY_TITLES.get(k, k) + (" ↓" if not M.HIGHER_IS_BETTER.get(k, True) else " ↑") for k in keys)
    pitch = any(r.get("pitch") for r in last["rows"])
    n_cols = len(keys) + (len(PITCH_KEYS) if pitch else 0)
    if pitch:
        heads += " | " + " | ".join(PITCH_TITLES[k] + (" ↑" if k == "within_50" else " ↓") for k in PITCH_KEYS)
    lines = [f"# Codec evaluation: `{last['checkpoint']}` (step {last['step']})", "",
             f"{report['items']} utterances of {', '.join(report['manifests'])} (each cut at "
             f"{report['max_seconds']:g} s), {report['sample_rate']} Hz. Mean ± std over utterances; ↑ higher is "
             "better, ↓ lower. PESQ-WB, STOI and ViSQOL at 16 kHz; mel L1 = mean |log10 mel| difference, 80 bins, "
             f"on both signals resampled to {M.MEL_SAMPLE_RATE // 1000} kHz (for a {report['sample_rate'] // 1000} kHz "
             f"codec the bins above {report['sample_rate'] / 2000:g} kHz hold no signal in either). Bitrate rows are "
             "named by the rate their codes take (codebooks x frame rate x bits; the bandwidth asked for in "
             "brackets when it differs) and go through `Codec.encode`/`decode`; the unquantized latent shows what the "
             "quantizer costs, the no-information row (decoder fed the set's mean latent, constant in time) is the "
             "floor" + ("; the true-STFT-magnitude rows are ceilings: every magnitude right, the phase random or "
                       "found by 32 Griffin-Lim iterations (hop = the codec's, n_fft = 4 hops)"
                       if any(r["kind"].startswith("oracle") for r in last["rows"]) else "") +
             ". `missing` = metric package not installed." +
             (" SI-SDR compares waveforms sample by sample: the decoder makes its own phase (and need not keep "
              "the sign of the waveform), as do the ceiling rows (random or Griffin-Lim phase), so it is strongly "
              "negative in every row, ceilings included; it measures phase agreement, which this codec does not "
              "aim for, not quality: read STOI, PESQ and mel L1." if "si_sdr" in keys else ""), "",
             f"| row | n_q | {heads} |", "|---|---|" + "---|" * n_cols]
    for r in last["rows"]:
        cells = " | ".join([_fmt(r["scores"].get(k)) for k in keys] + (fmt_pitch(r.get("pitch")) if pitch else []))
        lines.append(f"| {_row_name(r)} | {r['n_q'] if r['n_q'] is not None else '-'} | {cells} |")
    lines += _pitch_note(report) if pitch else []
    if len(cks) > 1:
        lines += ["", "## Against earlier checkpoints (bitrate rows, means)", "",
                  f"| checkpoint | step | row | {heads} |", "|---|---|---|" + "---|" * n_cols]
        for ck in cks:
            for r in ck["rows"]:
                if r["kind"] == "codes":
                    cells = " | ".join([_fmt(r["scores"].get(k), std=False) for k in keys]
                                       + (fmt_pitch(r.get("pitch")) if pitch else []))
                    lines.append(f"| `{ck['checkpoint']}` | {ck['step']} | {_row_name(r)} | {cells} |")
    if last["usage"]:
        lines += ["", f"## Code usage per stage (all stages, {last['frames']} frames)", "",
                  f"| stage | codes used (of {last['codebook_size']}) | perplexity | residual RMS / latent RMS |",
                  "|---|---|---|---|"]
        lines += [f"| {u['stage']} | {u['codes_used']} | {u['perplexity']:.1f} | {u['residual_rms_rel']:.4f} |"
                  for u in last["usage"]]
    if plots:
        names = PLOT_NAMES + ((report["learning_curve"],) if report.get("learning_curve") else ()) + \
            ((PITCH_PLOT,) if report.get("pitch_plot") else ())
        lines += ["", "## Plots", ""] + [f"![{n[:-4]}]({plot_dir}/{n})" for n in names]
    pk = ", ".join(f"{k} {v}" for k, v in report["packages"].items() if v)
    lines += ["", f"Metric packages: {pk}. Wall time {report['wall_seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def _pitch_note(report: dict) -> list[str]:
    """What the pitch columns measure."""
    return ["", "Pitch: F0 tracks of output and recording (Praat's autocorrelation method through "
            "praat-parselmouth, 10 ms frames, 40-450 Hz: a 50 Hz frame-rate buzz is measured as 50 Hz, not called "
            "unvoiced), pooled over the utterances (every frame counts once). F0 error = median |1200 log2(f_out / "
            "f_rec)| on frames voiced in both, with the share of those frames within 50 cents; GPE = share of them "
            "more than 20 % off; VDE = share of all frames whose voiced/unvoiced decision differs. A decoder that "
            "keeps the speaker's pitch scores near 0 cents and GPE 0; the no-information row is the floor."
            + (f" Narrowband spectrograms of the highest- and lowest-pitched voices: `{PITCH_PLOT}`."
               if report.get("pitch_plot") else "")]


# ------------------------------------------------------------------------------------------ plots
def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_plots(out: Path, results: list[CheckpointResult], keys: list[str], wavs: list[np.ndarray],
                extra: dict, sample_rate: int) -> bool:
    """metrics_vs_bitrate.png, code_usage.png and spectrogram.png in the directory `out`, and with the
    references' F0 tracks (extra["ref_f0"]) pitch_spectrogram.png; whether that one was drawn."""
    out.mkdir(parents=True, exist_ok=True)
    _plot_metrics(out / PLOT_NAMES[0], results, keys)
    if extra.get("counts") is not None:
        _plot_code_usage(out / PLOT_NAMES[1], results[-1], extra["counts"])
    _plot_spectrograms(out / PLOT_NAMES[2], wavs, extra.get("audio") or {}, sample_rate)
    if extra.get("ref_f0") is None:
        return False
    return _plot_pitch(out / PITCH_PLOT, wavs, extra.get("audio") or {}, extra["ref_f0"], sample_rate)


def _plot_pitch(path: Path, wavs: list[np.ndarray], audio: dict, ref_f0: list[np.ndarray], sample_rate: int) -> bool:
    """Narrowband spectrograms (codec.evaluation.pitch) of the references with the highest and the lowest
    median F0: the recording and its reconstructions at the lowest and the highest rate."""
    from data_prep.pitch import track_f0
    codes_rows = [n for n in audio if n.endswith("kbps")]
    if not codes_rows or not wavs:
        return False
    shown = list(dict.fromkeys((codes_rows[0], codes_rows[-1])))
    hi, lo = female_male(ref_f0)
    columns, f0 = [], {}
    for c, (i, title) in enumerate(((hi, "highest-pitched voice"), (lo, "lowest-pitched voice"))[: 1 if hi == lo else 2]):
        panels = [("recording", wavs[i], sample_rate)] + [(f"codec {n}", audio[n][i], sample_rate) for n in shown]
        f0[(c, 0)] = ref_f0[i]
        for r, n in enumerate(shown, 1):
            f0[(c, r)] = track_f0(audio[n][i], sample_rate)
        columns.append((title, panels))
    plot_narrowband(path, columns, f0)
    return True


def _plot_metrics(path: Path, results: list[CheckpointResult], keys: list[str]) -> None:
    """One panel per metric: the bitrate rows of every checkpoint against the rate, the reference
    rows of the last one as horizontal lines."""
    last = results[-1]
    shown = [k for k in keys if any(r.scores.get(k) for r in last.rows)]
    if not shown:
        return
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.2), squeeze=False)
    for ax, k in zip(axes[0], shown):
        for res, style in ((last, "o-"),) + tuple((r, "s--") for r in results[:-1]):
            pts = [(r.rate, r.scores[k]) for r in res.rows if r.kind == "codes" and r.scores.get(k)]
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1]["mean"] for p in pts], [p[1]["std"] for p in pts],
                            fmt=style, capsize=3, label=f"codes, step {res.step}")
        refs = [r for r in last.rows if r.kind != "codes"]
        for r, color in zip(refs, ("tab:green", "tab:red", "tab:purple", "tab:gray")):
            if r.scores.get(k):
                ax.axhline(r.scores[k]["mean"], color=color, ls=":", label=r.name)
        ax.set_xscale("log")
        bws = [r.rate for r in last.rows if r.kind == "codes"]
        ax.set_xticks(bws, [f"{b:g}" for b in bws])
        ax.minorticks_off()
        ax.set_xlabel("kbps (actual: codebooks x frame rate x bits)")
        ax.set_title(KEY_TITLES.get(k, k) + (" (lower is better)" if not M.HIGHER_IS_BETTER.get(k, True) else ""))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _plot_code_usage(path: Path, last: CheckpointResult, counts: np.ndarray) -> None:
    """counts [n_q, K]: each stage's code counts, sorted, one panel a stage."""
    plt = _pyplot()
    n_q = counts.shape[0]
    cols = min(5, n_q)
    rows_ = math.ceil(n_q / cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(2.8 * cols, 2.2 * rows_), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n_q:
            ax.axis("off")
            continue
        c = np.sort(counts[k])[::-1]
        ax.bar(np.arange(c.size), c, width=1.0)
        u = last.usage[k]
        ax.set_title(f"stage {k + 1}: {u.codes_used} used, ppl {u.perplexity:.0f}", fontsize=8)
        ax.set_yscale("symlog")
        ax.tick_params(labelsize=6)
    fig.suptitle("code counts per stage, sorted (all frames)", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _plot_spectrograms(path: Path, wavs: list[np.ndarray], audio: dict, sample_rate: int) -> None:
    """Log-mel spectrograms of the longest utterance: the reference, its lowest- and highest-rate
    reconstructions."""
    codes_rows = [n for n in audio if n.endswith("kbps")]
    if not codes_rows:
        return
    plt = _pyplot()
    i = int(np.argmax([w.shape[0] for w in wavs]))          # the longest utterance
    panels = [("reference", wavs[i])] + [(f"reconstruction, {n}", audio[n][i]) for n in (codes_rows[0], codes_rows[-1])
                                         if n in audio][: 2 if len(codes_rows) > 1 else 1]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), squeeze=False)
    for ax, (title, w) in zip(axes[:, 0], panels):
        ax.imshow(M.log_mel_spectrogram(w, sample_rate), origin="lower", aspect="auto", vmin=-5, vmax=1.5,
                  extent=(0, w.shape[0] / sample_rate, 0, M.MEL_N_MELS))
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("mel bin")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def _running_mean(x: np.ndarray, n: int) -> np.ndarray:
    n = max(1, min(n, x.size))
    c = np.cumsum(np.insert(x, 0, 0.0))
    return (c[n:] - c[:-n]) / n


def write_learning_curve(path: Path, losses: Path, results: list[CheckpointResult], keys: list[str]) -> None:
    """Top: the training mel loss (running mean over 25 steps) against the step. Below, one panel per
    metric: each bitrate's score at every scored checkpoint, and the no-information floor."""
    plt = _pyplot()
    rows = []
    with open(losses) as fh:
        for line in fh:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:            # a line cut by a kill: the rest is still a curve
                continue
            if not r.get("skipped") and math.isfinite(r.get("mel", float("nan"))):
                rows.append((r["step"], r["mel"]))
    scored = [r for r in results if r.step.isdigit()]
    panels = [(KEY_TITLES.get(k, k), lambda row, k=k: (row.scores.get(k) or {}).get("mean"))
              for k in keys if k in ("stoi", "pesq", "mel") and any(row.scores.get(k) for row in results[-1].rows)]
    if any(row.pitch for row in results[-1].rows):
        panels.append((PITCH_TITLES["cents_median"], lambda row: (row.pitch or {}).get("cents_median")))
    fig, axes = plt.subplots(1 + len(panels), 1, figsize=(7, 2.4 * (1 + len(panels))), squeeze=False, sharex=True)
    ax = axes[0, 0]
    if rows:
        steps, mel = (np.array(v, dtype=float) for v in zip(*rows))
        n = min(25, steps.size)
        ax.plot(steps[n - 1:], _running_mean(mel, n), lw=1)
    ax.set_ylabel("train mel loss")
    ax.grid(alpha=0.3)
    floor = {row.kind: row for row in results[-1].rows if row.kind != "codes"}
    for ax, (title, get) in zip(axes[1:, 0], panels):
        for kbps in sorted({row.rate for r in scored for row in r.rows if row.kind == "codes"}):
            pts = [(int(r.step), get(row)) for r in scored for row in r.rows
                   if row.kind == "codes" and row.rate == kbps and _finite(get(row))]
            if pts:
                ax.plot(*zip(*pts), "o-", ms=4, label=f"{kbps:g} kbps")
        if "no_information" in floor and _finite(get(floor["no_information"])):
            ax.axhline(get(floor["no_information"]), color="tab:red", ls=":", label="no information")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("training step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    plt.close(fig)
