"""Boundary error of the aligner against espeak-ng's own phoneme timings (mini corpus only).

    python -m tts.align.boundaries --durations dur/dev-clean.jsonl --phonemes data/phonemes/dev-clean.jsonl \
        --corpus data/mini/LibriTTS [--out report.json] [--frame-rate 50]

The frame rate of the durations comes from the meta file tts.align.durations writes beside them
(dur/dev-clean.meta.json), or from --frame-rate.

The mini corpus (data_prep.mini_corpus) is espeak-ng speech, and espeak-ng reports when each phoneme
starts in the audio it synthesises (library phoneme events, espeakINITIALIZE_PHONEME_EVENTS; the
command line has no such output: see espeak_timing). For each
utterance of a durations file this module rebuilds the corpus plan from `mini_corpus.json`
(`plan_corpus`: voice, pitch, speed, word gap, leading silence), synthesises the text again through
libespeak-ng with the same settings (a fresh engine per text), checks that its audio equals the command line's (which the corpus was
made with and which is trimmed here as the corpus trimmed it), maps event times through the corpus's trim and leading silence, pairs espeak's
phonemes with the utterance's pronounced phones (sequence matching: only equal phones are paired) and
compares phone start times: the aligner's start of a phone token is the sum of the durations of the
tokens before it. A measurement only: nothing here is used to train or tune the aligner's weights
(LibriTTS users have no such timings).
"""
from __future__ import annotations

import argparse
import difflib
import io
import json
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.io import atomic_write_text, read_jsonl
from core.logs import setup_logging

from .durations import meta_path, read_durations
from .espeak_timing import phone_events
from .phones import is_phone, split_tokens

log = logging.getLogger("tts.align.boundaries")

__all__ = ["espeak_phone_starts", "phone_starts_from_durations", "match_phones",
           "boundary_errors", "summarize", "main"]

def espeak_phone_starts(job, check_cli: bool = True) -> Optional[list[tuple[float, str]]]:
    """[(start seconds in the corpus wav, IPA phone)] of a mini corpus UttJob, or None if the library's
    audio differs from the command line's (then the times would not describe the corpus audio)."""
    from data_prep.mini_voice import _espeak, _trim
    import soundfile as sf

    sp = job.speaker
    wav_i16, events, sr = phone_events(job.text_norm, sp.espeak_voice(), sp.pitch, sp.speed, sp.gap)
    wav = wav_i16.astype(np.float32) / 32768.0
    if check_cli:       # the corpus was made by the command line: trim its audio, after checking the library
        cli, cli_sr = sf.read(io.BytesIO(_espeak(sp.espeak_args(), job.text_norm)), dtype="float32")
        n = min(len(cli), len(wav))   # the command line appends a final pause; the speech must be identical
        if cli_sr != sr or n < 0.5 * len(cli) or float(np.max(np.abs(cli[:n] - wav[:n]))) > 1e-3:
            log.warning("%s: libespeak-ng audio differs from the command line's; skipped", job.utt_id)
            return None
        wav = np.ascontiguousarray(cli)
    trimmed = _trim(wav, sr)                          # the corpus's own trim: a view into `wav`
    start = (trimmed.__array_interface__["data"][0] - wav.__array_interface__["data"][0]) // wav.itemsize
    return [((s - start) / sr + job.lead_s, p) for s, p in events if s >= start]


def phone_starts_from_durations(tokens: Sequence[str], durations: Sequence[int], frame_rate: float
                                ) -> list[tuple[float, str]]:
    """[(start seconds, phone)] of the pronounced phones: the start of each phone token's span."""
    out, t = [], 0
    for tok, d in zip(tokens, durations):
        if is_phone(tok):
            out.append((t / frame_rate, tok))
        t += d
    return out


def match_phones(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs (i, j) with ref[i] == hyp[j] along the longest matching blocks (difflib, no junk heuristic)."""
    sm = difflib.SequenceMatcher(a=list(ref), b=list(hyp), autojunk=False)
    return [(b.a + k, b.b + k) for b in sm.get_matching_blocks() for k in range(b.size)]


def boundary_errors(espeak: Sequence[tuple[float, str]], aligned: Sequence[tuple[float, str]]) -> np.ndarray:
    """Signed errors (aligner - espeak, seconds) of the paired phone starts."""
    pairs = match_phones([p for _, p in espeak], [p for _, p in aligned])
    return np.array([aligned[j][0] - espeak[i][0] for i, j in pairs], dtype=np.float64)


def summarize(err: np.ndarray) -> dict:
    """Median / mean absolute error in ms, median signed offset, share within 20 / 40 ms."""
    if err.size == 0:
        return {"phones": 0}
    a = np.abs(err) * 1000
    return {"phones": int(err.size), "median_abs_ms": round(float(np.median(a)), 1),
            "mean_abs_ms": round(float(a.mean()), 1), "median_signed_ms": round(float(np.median(err) * 1000), 1),
            "mean_abs_ms_offset_removed": round(float(np.mean(np.abs(err - np.median(err))) * 1000), 1),
            "within_20ms": round(float(np.mean(a <= 20)), 3), "within_40ms": round(float(np.mean(a <= 40)), 3)}


def measure(durations_file: str, phonemes_file: str, corpus_dir: str, frame_rate: Optional[float] = None,
            check_cli: bool = True, limit: Optional[int] = None) -> dict:
    """The report; FileNotFoundError / ValueError in one line for bad input, before any synthesis."""
    from data_prep.mini_corpus import replan
    plan = Path(corpus_dir) / "mini_corpus.json"
    if not plan.is_file():
        raise FileNotFoundError(f"--corpus {corpus_dir}: no mini_corpus.json: espeak-ng timings exist only for "
                                f"the mini corpus (data/mini/LibriTTS, written by recipe stage 0)")
    _, jobs = replan(plan)          # designed voices need their espeak-ng folder, which replan resolves
    job_of = {j.utt_id: j for j in jobs}
    durs = read_durations(durations_file)
    meta_file = meta_path(durations_file)
    if frame_rate is None:
        if not meta_file.is_file():
            raise FileNotFoundError(f"{meta_file} not found (tts.align.durations writes it beside "
                                    f"{durations_file}): pass --frame-rate")
        frame_rate = float(json.loads(meta_file.read_text())["frame_rate"])
    if not Path(phonemes_file).is_file():
        raise FileNotFoundError(f"--phonemes {phonemes_file}: no such file")
    phon = {str(r["id"]): r["phonemes"] for r in read_jsonl(phonemes_file)}
    errors, per_utt, skipped, paired, total = [], [], 0, 0, 0
    for uid in list(durs)[:limit]:
        job = job_of.get(uid)
        if job is None or uid not in phon:
            skipped += 1
            continue
        ref = espeak_phone_starts(job, check_cli)
        if ref is None:
            skipped += 1
            continue
        tokens = split_tokens(phon[uid])
        hyp = phone_starts_from_durations(tokens, durs[uid]["durations"], frame_rate)
        e = boundary_errors(ref, hyp)
        total += len(hyp)
        paired += e.size
        errors.append(e)
        per_utt.append({"id": uid, **summarize(e)})
    err = np.concatenate(errors) if errors else np.zeros(0)
    return {"durations": str(durations_file), "utterances": len(per_utt), "skipped_utterances": skipped,
            "phones_total": total, "phones_paired": paired, **summarize(err), "per_utterance": per_utt}


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tts.align.boundaries", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--durations", required=True, help="a durations file (tts.align.durations)")
    p.add_argument("--phonemes", required=True, help="the phonemes JSONL of the same utterances")
    p.add_argument("--corpus", required=True, help="the mini corpus's LibriTTS directory (mini_corpus.json)")
    p.add_argument("--out", default=None, help="write the report (JSON) here")
    p.add_argument("--limit", type=int, default=None, help="first N utterances only")
    p.add_argument("--no-cli-check", action="store_true", help="skip the library-vs-command-line audio check")
    p.add_argument("--frame-rate", type=float, default=None,
                   help="frames per second of the durations (default: from <durations minus .jsonl>.meta.json)")
    args = p.parse_args(argv)
    setup_logging()
    try:
        rep = measure(args.durations, args.phonemes, args.corpus, frame_rate=args.frame_rate,
                      check_cli=not args.no_cli_check, limit=args.limit)
    except (FileNotFoundError, ValueError, KeyError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if args.out:
        atomic_write_text(args.out, json.dumps(rep, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in rep.items() if k != "per_utterance"}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
