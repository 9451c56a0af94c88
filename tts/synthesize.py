"""Zero-shot synthesis from the command line (the synthesizer itself is tts/synthesizer.py).

    python -m tts.synthesize --text "Hello there." --prompt-wav p.wav --prompt-text "..." --out out.wav
    python -m tts.synthesize --list items.jsonl --out-dir out/   # {"id", "text", "prompt_wav", "prompt_text"}

Everything that can be checked without the models (device, output paths, the list's rows) is checked
before they load. In batch mode item i of the list uses seed --seed + i whatever the batching, one bad
item is reported in results.jsonl and the others are kept.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Optional, Union

import core.runtime  # noqa: E402,F401  (first: the OpenMP waiting policy, before torch loads)

from .limits import DefaultsHelp, MAX_PROMPT_TEXT_CHARS, MAX_TEXT_CHARS_PER_WORD, BadItemId, check_item_id, text_problem  # noqa: E402
from .sampling import SamplingConfig  # noqa: E402
from .synthesizer import MAX_TEXT_WORDS, SynthesisError, SynthesisResult, Synthesizer, split_sentences  # noqa: E402,F401

logger = logging.getLogger(__name__)

def _sampling_from_args(a) -> SamplingConfig:
    return SamplingConfig(temperature=a.temperature, top_k=a.top_k, top_p=a.top_p,
                          repetition_window=a.repetition_window, repetition_tau=a.repetition_tau,
                          max_length_factor=a.max_length_factor, speed=a.speed, seed=a.seed)


def check_output_file(path: Union[str, os.PathLike], what: str = "--out") -> Path:
    """An audio output path that can be written, checked before any work: not a folder, not under a
    file, a format soundfile writes as 16-bit PCM (wav, flac, aiff, ...)."""
    import soundfile as sf
    p = Path(path)
    if p.is_dir():
        raise SynthesisError(f"{what} {p} is a folder; give a file name such as {p / 'out.wav'}")
    _check_nearest_folder(p, p.parents, what)
    fmt = p.suffix.lstrip(".").upper()
    if not fmt or fmt not in sf.available_formats() or not sf.check_format(fmt, "PCM_16"):
        raise SynthesisError(f"{what} {p}: cannot write {p.suffix or 'a file without extension'} "
                             f"(16-bit PCM); use .wav or .flac")
    return p


def check_output_dir(path: Union[str, os.PathLike], what: str = "--out-dir") -> Path:
    p = Path(path)
    _check_nearest_folder(p, (p, *p.parents), what)
    return p


def _check_nearest_folder(p: Path, candidates, what: str) -> None:
    """The first existing path among candidates (p's folder chain) must be a writable folder."""
    for q in candidates:
        if q.exists():
            if not q.is_dir():
                raise SynthesisError(f"{what} {p}: {q} is a file, not a folder")
            if not os.access(q, os.W_OK | os.X_OK):
                raise SynthesisError(f"{what} {p}: the folder {q} is not writable")
            return


def read_list(list_path: Union[str, os.PathLike], max_words: Optional[int] = MAX_TEXT_WORDS) -> list[dict]:
    """Rows of a --list JSONL, checked before any model is loaded: JSON, the required keys as strings (texts
    bounded by length first: tts.limits.text_problem), and an id that is a plain file name
    (tts.limits.check_item_id) used once. A row without an id gets its line number. A relative prompt_wav is
    read from the current folder, else from the list's folder and the folders above it (tts.zeroshot_list
    writes recipe-relative paths); a warning says which folder when it is not the list's own."""
    list_path = Path(list_path)
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SynthesisError(f"--list {list_path}: cannot read it ({e})") from e
    rows, seen, bases = [], {}, set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SynthesisError(f"{list_path}:{n}: not JSON ({e})") from e
        if not isinstance(row, dict):
            raise SynthesisError(f"{list_path}:{n}: a row must be a JSON object")
        missing = [k for k in ("text", "prompt_wav", "prompt_text") if k not in row]
        if missing:
            raise SynthesisError(f"{list_path}:{n}: missing {missing}")
        for key, cap in (("text", max_words and max_words * MAX_TEXT_CHARS_PER_WORD),
                         ("prompt_text", MAX_PROMPT_TEXT_CHARS), ("prompt_wav", 4096)):
            bad = text_problem(row[key], key, cap)
            if bad and not bad.endswith("empty"):   # an empty text: that item's error in results.jsonl
                raise SynthesisError(f"{list_path}:{n}: {bad}")
        try:
            rid = check_item_id(row.setdefault("id", f"{n:05d}"), f"{list_path}:{n}")
        except BadItemId as e:
            raise SynthesisError(str(e)) from e
        if rid in seen:
            raise SynthesisError(f"{list_path}:{n}: id {rid!r} is used again (first on line {seen[rid]}); "
                                 f"each item writes <id>.wav")
        seen[rid] = n
        row["prompt_wav"] = _prompt_path(row["prompt_wav"], list_path, bases)
        rows.append(row)
    if not rows:
        raise SynthesisError(f"--list {list_path}: no items")
    for base in sorted(bases):
        logger.warning("%s: relative prompt_wav paths were found from %s (above the list's folder)", list_path, base)
    return rows


def _prompt_path(wav: str, list_path: Path, bases: set) -> str:
    """A list row's prompt_wav: as given when absolute or found from the current folder, else from the list's
    folder and the folders above it (the one used, when above the list's folder, goes into `bases`)."""
    from core.io import path_from_file
    p = Path(wav)
    if p.is_absolute() or p.exists():
        return wav
    hint: list = []
    found = path_from_file(p, list_path.parent, hint)
    if hint and Path(os.path.abspath(hint[0])) != Path(os.path.abspath(list_path.parent)):
        bases.add(str(hint[0]))
    return found


def _write(path: Path, audio, sr: int) -> Optional[str]:
    """Write one output atomically (data_prep.audio.save_audio); why it failed, or None."""
    from data_prep.audio import save_audio
    try:
        save_audio(path, audio, sr)
    except (OSError, RuntimeError) as e:        # full disk, no permission, a folder in the way (LibsndfileError)
        return f"cannot write {path}: {type(e).__name__}: {e}"
    return None


def _parser() -> argparse.ArgumentParser:
    d = SamplingConfig()
    ap = argparse.ArgumentParser(prog="python -m tts.synthesize", description="VALL-E zero-shot synthesis.",
                                 formatter_class=DefaultsHelp)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="text to speak (single mode)")
    src.add_argument("--list", help="JSONL of {id, text, prompt_wav, prompt_text[, prompt_sr]} (batch mode)")
    ap.add_argument("--prompt-wav", help="prompt recording (single mode)")
    ap.add_argument("--prompt-text", help="transcript of the prompt (single mode)")
    ap.add_argument("--out", default="out.wav", help="output wav (single mode)")
    ap.add_argument("--out-dir", help="output folder (batch mode): <id>.wav + results.jsonl")
    ap.add_argument("--exp-dir", default=None, help="where the defaults live: EXP/{codec,ar,nar}/model (default "
                                                    "./exp if it holds a codec, else egs/libritts/exp)")
    ap.add_argument("--codec", help="codec directory or Hub id (default EXP/codec/model)")
    ap.add_argument("--ar", help="AR model directory or Hub id (default EXP/ar/model)")
    ap.add_argument("--nar", help="NAR model directory or Hub id (default EXP/nar/model)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")
    ap.add_argument("--seed", type=int, default=None, help="item i of a list uses seed + i (default: random, "
                                                           "reported)")
    ap.add_argument("--batch-size", type=int, default=8, help="sentences decoded together")
    ap.add_argument("--max-words", type=int, default=MAX_TEXT_WORDS, help="refuse a longer text (0: no limit)")
    ap.add_argument("--temperature", type=float, default=d.temperature, help=">= 0; 0 = greedy")
    ap.add_argument("--top-k", type=int, default=d.top_k, help="0 = off")
    ap.add_argument("--top-p", type=float, default=d.top_p, help="in (0, 1]; 1 = off")
    ap.add_argument("--repetition-window", type=int, default=d.repetition_window, help="0 = no repetition guard")
    ap.add_argument("--repetition-tau", type=float, default=d.repetition_tau, help=">= 0")
    ap.add_argument("--max-length-factor", type=float, default=d.max_length_factor,
                    help="an AR without durations stops at this x the expected length")
    ap.add_argument("--speed", type=float, default=d.speed,
                    help="speaking rate relative to the prompt's, in [0.25, 4] (an AR with durations; 2 = twice "
                         "as fast)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def main(argv: Optional[list[str]] = None) -> int:
    from core.logs import setup_logging
    ap = _parser()
    a = ap.parse_args(argv)
    setup_logging(a.verbose)
    if a.text is not None and (not a.prompt_wav or a.prompt_text is None):
        ap.error("single mode needs --prompt-wav and --prompt-text")
    if a.list is not None and not a.out_dir:
        ap.error("batch mode (--list) needs --out-dir")
    try:
        # everything that can be checked without the models, before loading them
        from codec.api import check_device
        check_device(a.device)
        sc = _sampling_from_args(a)
        if a.text is not None:
            check_output_file(a.out)
            if not Path(a.prompt_wav).is_file():
                raise SynthesisError(f"--prompt-wav {a.prompt_wav}: no such file")
            for key, value, cap in (("--text", a.text, a.max_words and a.max_words * MAX_TEXT_CHARS_PER_WORD),
                                    ("--prompt-text", a.prompt_text, MAX_PROMPT_TEXT_CHARS)):
                bad = text_problem(value, key, cap)
                if bad:
                    raise SynthesisError(bad)
            rows = None
        else:
            check_output_dir(a.out_dir)
            rows = read_list(a.list, a.max_words or None)
        syn = Synthesizer.from_pretrained(codec=a.codec, ar=a.ar, nar=a.nar, device=a.device, exp_dir=a.exp_dir)
        syn.max_text_words = a.max_words or None
        if rows is None:
            res = syn.synthesize(a.text, a.prompt_wav, a.prompt_text, sampling=sc, seed=a.seed)
            failed = _write(Path(a.out), res.audio, res.sample_rate)
            if failed:
                raise SynthesisError(f"{failed}; nothing written (choose another --out)")
            logger.info("wrote %s: %.2f s of audio in %.2f s (seed %d, stops %s)", a.out, res.duration,
                        res.seconds, res.seed, res.stops)
            return 0
        return _batch_mode(syn, a, rows, sc)
    except (SynthesisError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _batch_mode(syn: Synthesizer, a, rows: list[dict], sc: SamplingConfig) -> int:
    """Each batch's items are written (atomically) as soon as it is done; a failed item, in synthesis or in
    its write, is reported in results.jsonl and the last line names every failure."""
    from core.io import write_jsonl
    from core.progress import progress
    list_path = Path(a.list)
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = a.seed if a.seed is not None else secrets.randbits(31)
    report: dict[int, dict] = {}
    bs = max(1, a.batch_size)

    def fail(i: int, why: str) -> None:
        report[i] = {"id": rows[i]["id"], "text": rows[i].get("text"), "error": f"{list_path} id {rows[i]['id']}: {why}"}
        logger.error("%s", report[i]["error"])

    for s0 in progress(range(0, len(rows), bs), desc="synthesize", unit="batch"):
        idx = list(range(s0, min(len(rows), s0 + bs)))
        try:
            # item i of the list uses seed base + i, whatever the batching
            res = syn.synthesize_batch([rows[i] for i in idx], sampling=sc, seeds=[base + i for i in idx],
                                       batch_size=bs)
        except SynthesisError:
            res = []
            for i in idx:           # one bad item: find it, keep the others
                try:
                    res.append(syn.synthesize_batch([rows[i]], sampling=sc, seeds=[base + i], batch_size=1)[0])
                except SynthesisError as e:
                    res.append(None)
                    fail(i, str(e))
        for i, r in zip(idx, res):
            if r is None:
                continue
            name = f"{rows[i]['id']}.wav"            # ids are checked file names (read_list)
            why = _write(out_dir / name, r.audio, r.sample_rate)
            if why:
                fail(i, why)
                continue
            report[i] = {"id": rows[i]["id"], "wav": name, "text": r.text, "seed": r.seed,
                         "audio_seconds": round(r.duration, 3), "wall_seconds": round(r.seconds, 3),
                         "frames": r.frames, "stops": r.stops}
            for k in ("speaker", "prompt_wav", "prompt_text", "ref_wav"):
                if rows[i].get(k) is not None:
                    report[i][k] = rows[i][k]
        if idx[-1] + 1 < len(rows):     # the records so far: a crash later loses no finished item's record
            with contextlib.suppress(OSError):
                write_jsonl(out_dir / "results.jsonl", [report[i] for i in sorted(report)])
    failed = [report[i]["id"] for i in range(len(rows)) if "error" in report[i]]
    try:
        write_jsonl(out_dir / "results.jsonl", [report[i] for i in range(len(rows))])
    except OSError as e:
        print(f"error: cannot write {out_dir / 'results.jsonl'} ({e}); {len(rows) - len(failed)} wav(s) were "
              f"written", file=sys.stderr)
        return 1
    logger.info("wrote %d of %d items to %s", len(rows) - len(failed), len(rows), out_dir)
    if failed:
        print(f"error: {len(failed)} of {len(rows)} items failed ({', '.join(failed[:10])}"
              f"{', ...' if len(failed) > 10 else ''}): see {out_dir / 'results.jsonl'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
