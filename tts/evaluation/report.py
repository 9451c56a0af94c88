"""Writes a tts.evaluate report: report.json, report.md, scores.png, spectrograms.png, pitch_spectrograms.png,
examples/."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Optional

from core.io import atomic_path, atomic_write_text

from .bootstrap import fmt_ci
from .plots import ROW_TITLES, plot_pitch, plot_scores, plot_spectrograms

log = logging.getLogger(__name__)

PITCH_PLOT = "pitch_spectrograms.png"


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
        for name, ok in (("scores.png", lambda p: plot_scores(report, p)),
                         ("spectrograms.png", lambda p: plot_spectrograms(report, items, p)),
                         (PITCH_PLOT, lambda p: plot_pitch(report, items, p))):
            if ok(out / name):
                plots.append(name)
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
    lines += _floor_note(report)
    lines += _pitch_table(report)
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


FLOOR_TITLES = {"different_speaker": "different speaker (SIM floor)",
                "codec_different_speaker": "codec resynthesis of another speaker (codec-domain SIM floor)",
                "nearest_training_voice": "nearest training voice"}


def _table(report, has_per: bool) -> list[str]:
    """The rows' scores (WER, PER and SIM with their bootstrap 95 % intervals), one line each, then the SIM
    floors: different speaker, codec-domain, nearest training voice."""
    rows = report.rows
    lines: list[str] = []
    head = ["row", "items", "WER", "S / D / I words"] + (["PER", "S / D / I phones"] if has_per
                                                                   else []) + \
        ["SIM to prompt", "DNSMOS ovrl", "PESQ", "STOI", "mel L1", "mean s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cm, ci = r.codec_metrics, getattr(r, "ci", None) or {}
        miss = f" ({r.missing} missing)" if r.missing else ""
        cells = [ROW_TITLES.get(name, name), f"{r.n}{miss}", fmt_ci(r.wer, ci.get("wer")), _sdi(r.wer_detail)]
        if has_per:
            cells += [fmt_ci(r.per, ci.get("per")), _sdi(r.per_detail)]
        cells += [fmt_ci(r.sim, ci.get("sim")), _f(r.dnsmos.get('ovrl'), 2) if r.dnsmos else 'n/a',
                  _f(cm.get('pesq'), 2), _f(cm.get('stoi')), _f(cm.get('mel')), _f(r.seconds, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    floors = dict(getattr(report, "floors", None) or {})
    if not floors and report.sim_floor is not None:
        floors = {"different_speaker": {"sim": report.sim_floor}}
    for key, title in FLOOR_TITLES.items():
        f = floors.get(key)
        if f and f.get("sim") is not None:
            cells = [title, str(sum(v is not None for v in f.get("per_item", []))) if f.get("per_item") else ""] + \
                [""] * (head.index("SIM to prompt") - 2) + [fmt_ci(f["sim"], f.get("sim_ci"))]
            lines.append("| " + " | ".join(cells + [""] * (len(head) - len(cells))) + " |")
    return lines


def _floor_note(report) -> list[str]:
    """What the intervals and the SIM floors mean."""
    f = getattr(report, "floors", None) or {}
    lines = ["[low, high] beside WER, PER, SIM and the pitch scores: a bootstrap 95 % interval over items (1000 resamples of the items with replacement, seed 0); a "
             "corpus WER or PER is recomputed on each resample as its errors over its reference words or phones."]
    if "codec_different_speaker" in f:
        lines.append("The codec-domain floor scores each prompt against the codec resynthesis of the other test "
                     "speakers' recordings: every output of the codec shares its artefacts, so read the TTS's SIM "
                     "between this floor and the resynthesis row (the same speaker through the codec).")
    if "nearest_training_voice" in f:
        n = f["nearest_training_voice"]
        lines.append(f"Nearest training voice: each prompt's similarity to its most similar training speaker (mean "
                     f"cosine to {n.get('recordings_per_speaker')} recordings of each of "
                     f"{n.get('n_training_speakers')} training speakers, the largest): what a model that maps every "
                     f"new voice to the nearest voice it was trained on would score.")
    return [" ".join(lines), ""]


def _pitch_table(report) -> list[str]:
    """Each row's pitch against its prompt (and, on the recording's time axis, against the recording), the
    ground truth as the same-speaker ceiling and the different-speaker floor."""
    rows = {n: r.pitch for n, r in report.rows.items() if getattr(r, "pitch", None)}
    floor = ((getattr(report, "floors", None) or {}).get("different_speaker") or {}).get("pitch")
    if not rows:
        return []
    head = ["row", "items", "median F0 within 2 st of the prompt's [95 % CI]", "mean distance from the prompt's median (st)",
            "median F0 (Hz)", "F0 range (st)", "range minus the prompt's (st)", "F0 error vs recording (cents)",
            "within 50 c", "GPE", "VDE"]
    lines = ["", "## Pitch", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    named = [(ROW_TITLES.get(n, n) + (" (same-speaker ceiling)" if n == "ground_truth" else ""), p)
             for n, p in rows.items()]
    if floor and floor.get("n"):
        named.append(("different speaker (floor)", floor))
    for title, p in named:
        v = p.get("vs_recording") or {}
        cells = [title, str(p.get("n", "")), fmt_ci(p.get("within_2st"), p.get("within_2st_ci")),
                 fmt_ci(p.get("abs_st_mean"), p.get("abs_st_ci"), 2), _f(p.get("f0_median_hz"), 0),
                 _f(p.get("range_st_mean"), 1), fmt_ci(p.get("range_diff_mean"), p.get("range_diff_ci"), 1),
                 fmt_ci(v.get("cents_median"), v.get("cents_median_ci"), 0) if v else "",
                 fmt_ci(v.get("within_50"), v.get("within_50_ci"), 2) if v else "",
                 fmt_ci(v.get("gpe"), v.get("gpe_ci"), 2) if v else "", fmt_ci(v.get("vde"), v.get("vde_ci"), 2) if v else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Pitch: F0 tracks by Praat's autocorrelation method (praat-parselmouth, 10 ms frames, 40-450 Hz; a "
              "50 Hz frame-rate buzz is measured as 50 Hz). Each output's median F0 and range (P5-P95 of its voiced "
              "frames, in semitones) are compared with its prompt's; recordings of one speaker differ by about "
              "0.4-1.0 semitone, so the ground-truth row is the ceiling, and the floor compares each prompt with the "
              "other test speakers' recordings. Rows on the recording's time axis (codec resynthesis, ground-truth "
              "codebook 1 + NAR) are also scored frame by frame against the recording, pooled over items: median F0 "
              "error in cents on frames voiced in both, the share within 50 cents, GPE (share more than 20 % off) and "
              "VDE (share of frames whose voicing differs).", ""]
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
    for key in ("wer", "per", "sim", "voice", "pitch", "duration"):
        if key not in t:
            continue
        v = t[key]
        verdict = f"**{'met' if v['met'] else 'NOT met'}**"
        if key == "duration":
            lines.append(f"- {v['rule']}: median {_f(v['tts'], 2)} (range {_f(v['min'], 2)}-{_f(v['max'], 2)}): "
                         f"{verdict}")
        elif key == "sim":
            lines.append(f"- {v['rule']}: TTS {fmt_ci(v['tts'], v.get('ci'))} vs limit {_f(v['limit'])} (floor "
                         f"{_f(v['base'])}): {verdict}")
        elif key == "voice":
            lines.append(f"- {v['rule']}: TTS {fmt_ci(v['tts'], v.get('ci'))} vs {_f(v['limit']['sim'])} / "
                         f"{_f(v['limit']['ci_low'])} / {_f(v['limit']['resynthesis'])} (floor {_f(v['floor'])}, "
                         f"resynthesis {_f(v['resynthesis'])}): {verdict}")
        elif key == "pitch":
            lines.append(f"- {v['rule']}: TTS {fmt_ci(v['tts'], v.get('ci'), 2)} vs limit {_f(v['limit'], 2)}: "
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
    dn = (f" on {s['dnsmos_items']} of the {s['n_items']} items, evenly spread (0.45 s a clip)"
          if s.get("dnsmos_items") and s["dnsmos_items"] < s.get("n_items", 0) else "")
    lines.append(f"- DNSMOS: {'speechmos (P.835 ovrl)' + dn if s.get('dnsmos') else 'not installed / off'}.")
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
