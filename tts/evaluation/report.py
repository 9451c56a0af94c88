"""Writes a tts.evaluate report: report.json, report.md, scores.png, spectrograms.png, examples/."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Optional

import numpy as np

from data_prep.audio import load_audio
from core.io import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

ROW_TITLES = {"ground_truth": "ground truth", "resynthesis": "codec resynthesis",
              "gt_cb1_nar": "ground-truth codebook 1 + NAR", "tts": "TTS (zero-shot)"}


def _f(x: Optional[float], nd: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def write_report(report, items, out_dir: str | Path, examples: int = 3) -> Path:
    """All report files into ``out_dir``; returns the Markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ex = _copy_examples(report, items, out, examples)
    d = report.to_dict()
    d["examples"] = ex
    atomic_write_text(out / "report.json", json.dumps(d, indent=2, ensure_ascii=False) + "\n")
    plots = []
    try:
        if _plot_scores(report, out / "scores.png"):
            plots.append("scores.png")
        if _plot_spectrograms(report, items, out / "spectrograms.png"):
            plots.append("spectrograms.png")
    except ImportError as e:  # pragma: no cover - matplotlib is a core dependency
        log.warning("plots skipped: %s", e)
    md = _markdown(report, ex, plots)
    atomic_write_text(out / "report.md", md)
    log.info("report: %s", out / "report.md")
    return out / "report.md"


def _markdown(report, examples: list[dict], plots: list[str]) -> str:
    s = report.setting
    lines = ["# Zero-shot TTS evaluation", ""]
    lines += [f"{s['n_items']} test items, {s['n_speakers']} speakers (unseen in training); every row is "
              f"scored on the same items by the same stack. Codec resynthesis uses "
              f"{s['n_q']} codebook(s), the TTS's n_q." if s.get("n_q") else
              f"{s['n_items']} test items, {s['n_speakers']} speakers; every row is scored on the same items.", ""]
    has_per = any(r.per is not None for r in report.rows.values())
    lines += _table(report, has_per)
    lines += _notes(report, has_per)
    lines += _targets(report.targets)
    lines += _setting(report)
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    if examples:
        lines += ["", "## Examples", "",
                  "| id | text | prompt | ground truth | resynthesis | GT codebook 1 + NAR | TTS | TTS heard as |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in examples:
            cells = [f"[wav]({e[k]})" if e.get(k) else ""
                     for k in ("prompt", "ground_truth", "resynthesis", "gt_cb1_nar", "tts")]
            lines.append(f"| {e['id']} | {e['text']} | " + " | ".join(cells) + f" | {e.get('tts_hyp', '')} |")
    return "\n".join(lines) + "\n"


def _table(report, has_per: bool) -> list[str]:
    """The rows' scores, one line each, and the different-speaker SIM floor."""
    rows = report.rows
    lines: list[str] = []
    head = ["row", "items", "WER", "S / D / I words"] + (["PER", "S / D / I phones"] if has_per else []) + \
        ["SIM to prompt", "DNSMOS ovrl", "PESQ", "STOI", "mel L1", "mean s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cm = r.codec_metrics
        miss = f" ({r.missing} missing)" if r.missing else ""
        cells = [ROW_TITLES.get(name, name), f"{r.n}{miss}", _f(r.wer), _sdi(r.wer_detail)]
        if has_per:
            cells += [_f(r.per), _sdi(r.per_detail)]
        cells += [_f(r.sim), _f(r.dnsmos.get('ovrl'), 2) if r.dnsmos else 'n/a', _f(cm.get('pesq'), 2),
                  _f(cm.get('stoi')), _f(cm.get('mel')), _f(r.seconds, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    if report.sim_floor is not None:
        cells = ["different speaker (SIM floor)"] + [""] * (head.index("SIM to prompt") - 1) + [_f(report.sim_floor)]
        lines.append("| " + " | ".join(cells + [""] * (len(head) - len(cells))) + " |")
    return lines


def _notes(report, has_per: bool) -> list[str]:
    """What the table's scores mean, and what the WERs and durations of these items say."""
    s, rows = report.setting, report.rows
    lines = ["", "SIM on the ground-truth row is the same-speaker ceiling: two different utterances "
             "(prompt and recording) of one speaker. The floor pairs each prompt with other speakers' "
             "recordings. Codec metrics compare the resynthesis with the recording. SI-SDR is left out "
             "of this table (it is in report.json): the codec's decoder makes its own phase and does not "
             "keep the waveform's sign, so SI-SDR, a waveform-matching score, is strongly negative for "
             "any output of it and says nothing about its quality.", "",
             "S / D / I: substitutions, deletions and insertions summed over the items (a missing output "
             "or an empty transcript is all deletions: WER 1.0)."]
    if "gt_cb1_nar" in rows:
        lines += ["", f"'{ROW_TITLES['gt_cb1_nar']}' isolates the NAR: the recording's own codebook-1 codes, "
                  f"codebooks 2..{s.get('nar_n_q', 'n_q')} filled by the NAR from the prompt's codes and the "
                  "phonemes the synthesizer gives it, decoded at the recording's level. Codec resynthesis -> "
                  "this row is what the NAR loses; this row -> TTS is what the AR loses."]
    if has_per:
        dev = s.get("aligner_dev_per")
        lines += ["", "PER: phoneme error rate of the project's CTC phoneme recognizer (`tts.align`, "
                  f"{s.get('aligner')}) against the pronounced phones of each item's text from the models' text "
                  f"front end (settings from {s.get('frontend')}). The recognizer was trained on the **training speakers "
                  "only**: the test voices are unseen by it, as by the TTS"
                  + (f" (its own dev PER {_f(dev)})" if dev is not None else "") + ". It is a "
                  "domain-matched intelligibility measure beside the WER; the ground-truth row is its "
                  "ceiling on these items (its own errors on real recordings)."]
    lines.append("")
    gt, rs = rows.get("ground_truth"), rows.get("resynthesis")
    if gt and rs and gt.wer is not None and rs.wer is not None and gt.wer > rs.wer:
        lines += [f"The ground truth scores a worse WER ({_f(gt.wer)}) than its codec resynthesis "
                  f"({_f(rs.wer)}). This is the ASR, not the recordings: {s['asr']} was not trained on "
                  "these voices (espeak-ng voices with unusual pitch and speed in the mini corpus), and the "
                  "codec's smoother, band-limited output is closer to what it knows. Compare rows with each "
                  "other; do not read a WER as intelligibility.", ""]
    d = getattr(report, "durations", None) or {}
    if d:
        untrimmed = (f"; of the whole files, leading and trailing pauses included: median "
                     f"{_f(d['median_untrimmed'], 2)}") if d.get("median_untrimmed") is not None else ""
        lines += [f"Duration ratio TTS / ground truth per item, of the speech spans (from the first to the last "
                  f"20 ms frame within 40 dB of the loudest; a TTS output continues its prompt and has no leading "
                  f"pause, a recording has one): median {_f(d['median'], 2)}, range "
                  f"{_f(d['min'], 2)}-{_f(d['max'], 2)} over {d['n']} items{untrimmed}.", ""]
    return lines


def _targets(t: dict) -> list[str]:
    """Each target's rule, value and verdict."""
    lines = ["## Targets", ""]
    if not t:
        lines.append("Not evaluated (a TTS, resynthesis or ground-truth row is missing).")
    for key in ("wer", "per", "sim", "duration"):
        if key not in t:
            continue
        v = t[key]
        verdict = f"**{'met' if v['met'] else 'NOT met'}**"
        if key == "duration":
            lines.append(f"- {v['rule']}: median {_f(v['tts'], 2)} (range {_f(v['min'], 2)}-{_f(v['max'], 2)}): "
                         f"{verdict}")
        elif key == "sim":
            lines.append(f"- {v['rule']}: TTS {_f(v['tts'])} vs limit {_f(v['limit'])} (floor {_f(v['base'])}): "
                         f"{verdict}")
        else:
            lines.append(f"- {v['rule']}: TTS {_f(v['tts'])} vs limit {_f(v['limit'])} "
                         f"(resynthesis {_f(v['base'])}, ratio {_f(v.get('ratio'), 2)}): {verdict}")
    return lines


def _setting(report) -> list[str]:
    """The scorers and the wall time."""
    s, rows = report.setting, report.rows
    lines = ["", "## Setting", "", f"- ASR: {s['asr']}."]
    if s.get("asr_constrained"):
        lines.append("  This is a **constrained** setting: the language model knows the evaluated "
                     "sentences, so WERs are far below what an open-vocabulary ASR would give, and only "
                     "the comparison between rows on the same items is meaningful.")
    if s.get("asr_oov"):
        lines.append(f"  Words the bundled dictionary cannot recognise (always errors): {', '.join(s['asr_oov'])}.")
    lines.append(f"- Speaker similarity: cosine of {s['speaker_encoder']} embeddings.")
    lines.append(f"- DNSMOS: {'speechmos (P.835 ovrl)' if s.get('dnsmos') else 'not installed / off'}.")
    lines.append(f"- Text normalisation for WER: data_prep.text.normalize_text, lower case, no punctuation.")
    lines.append(f"- Wall time: {report.seconds:.0f} s.")
    for name, r in rows.items():
        wd = r.wer_detail
        lines.append(f"- {ROW_TITLES.get(name, name)}: {wd.get('substitutions')} substitutions, "
                     f"{wd.get('deletions')} deletions, {wd.get('insertions')} insertions over "
                     f"{wd.get('ref_words')} words.")
    return lines


def _sdi(d: dict) -> str:
    if not d or d.get("substitutions") is None:
        return "n/a"
    return f"{d['substitutions']} / {d['deletions']} / {d['insertions']}"


def _copy_examples(report, items, out: Path, n: int) -> list[dict]:
    exd = out / "examples"
    res = []
    for it, rec in list(zip(items, report.items))[: max(0, n)]:
        e = {"id": it.id, "text": it.text, "tts_hyp": rec.get("tts", {}).get("hyp", "")}
        srcs = {"prompt": it.prompt_wav, "ground_truth": it.ref_wav,
                "resynthesis": rec.get("resynthesis", {}).get("wav"),
                "gt_cb1_nar": rec.get("gt_cb1_nar", {}).get("wav"), "tts": it.out_wav}
        for k, src in srcs.items():
            if src and Path(src).is_file():
                dst = exd / it.id / f"{k}.wav"
                dst.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(dst, suffix=".wav") as tmp:
                    shutil.copyfile(src, tmp)
                e[k] = str(dst.relative_to(out))
        res.append(e)
    return res


def _plot_scores(report, path: Path) -> bool:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(report.rows)
    panels = [("WER per utterance", lambda r: r.get("wer")), ("PER per utterance", lambda r: r.get("per")),
              ("SIM to prompt", lambda r: r.get("sim")),
              ("DNSMOS ovrl", lambda r: (r.get("dnsmos") or {}).get("ovrl"))]
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
        if title.startswith("SIM") and report.sim_floor is not None:
            ax.axhline(report.sim_floor, color="gray", ls="--", lw=1, label="different-speaker floor")
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{report.setting['n_items']} items, one scoring stack")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return True


def _plot_spectrograms(report, items, path: Path) -> bool:
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
