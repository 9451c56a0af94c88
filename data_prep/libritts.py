"""Manifests for a LibriTTS-layout corpus (the real LibriTTS or the mini corpus).

    python -m data_prep.libritts --corpus-dir download --out data/manifests \
        --subsets train-clean-100 dev-clean test-clean --jobs 4

Layout read: ``<corpus>/LibriTTS/<subset>/<speaker>/<chapter>/<utt>.wav`` with
``<utt>.normalized.txt`` and ``<utt>.original.txt`` next to each wav.

Written per subset (atomically):

* ``<out>/<subset>.jsonl``: one line per usable utterance, sorted by id::

    {"id": "19_198_000000_000000", "path": "data/mini/LibriTTS/train-clean-100/19/198/19_198_000000_000000.wav",
     "duration": 4.02, "sr": 24000, "speaker": "19", "chapter": "198",
     "text_norm": "...", "text_orig": "..."}

* ``<out>/<subset>.skipped.jsonl``: ``{"id", "path", "reason"}`` for every wav left out
  (unreadable, empty, corrupt, no transcript, outside the duration filter).

``path`` is relative to the folder the manifests were made from (the recipe directory) when the
corpus and the manifests lie in it, else absolute: a moved checkout reads its own data, not the old
tree's. :func:`iter_manifest` / :func:`read_manifest` return it absolute, found from the manifest's
folder or one above it, whatever the current folder.

A bad file never stops the scan; the skipped files are summarised in the log.
"""
from __future__ import annotations

import argparse
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from data_prep.audio import AudioError, audio_info, load_audio
from core.io import iter_jsonl, path_for_file, path_from_file, write_jsonl
from core.logs import setup_logging
from core.progress import progress

log = logging.getLogger(__name__)

MANIFEST_FIELDS: tuple[str, ...] = ("id", "path", "duration", "sr", "speaker", "chapter", "text_norm", "text_orig")


@dataclass
class Utterance:
    """One manifest row."""
    id: str
    path: str
    duration: float
    sr: int
    speaker: str
    chapter: str
    text_norm: str
    text_orig: str


@dataclass
class Skipped:
    """A wav left out of the manifest, with the reason."""
    id: str
    path: str
    reason: str


@dataclass
class ManifestStats:
    """Summary of one subset's scan."""
    subset: str
    kept: int
    skipped: int
    hours: float
    speakers: int
    reasons: dict[str, int]


def find_subset_dir(corpus_dir: str | os.PathLike, subset: str) -> Path:
    """Resolve ``<corpus>/LibriTTS/<subset>`` (``corpus_dir`` may also be the LibriTTS dir itself)."""
    corpus_dir = Path(corpus_dir)
    for cand in (corpus_dir / "LibriTTS" / subset, corpus_dir / subset):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"subset {subset!r} not found under {corpus_dir} (expected {corpus_dir}/LibriTTS/{subset}/)")


def _read_text(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return " ".join(text.split()) or None


def scan_utterance(wav: Path, decode: bool = False) -> Utterance | Skipped:
    """Build the manifest row of one wav, or say why it cannot be used. Never raises."""
    utt_id = wav.name[: -len(".wav")]
    path = str(wav.absolute())
    try:
        text_norm = _read_text(wav.with_name(utt_id + ".normalized.txt"))
        if text_norm is None:
            return Skipped(utt_id, path, "no transcript (missing or empty .normalized.txt)")
        text_orig = _read_text(wav.with_name(utt_id + ".original.txt"))
        if text_orig is None:
            log.debug("%s: no .original.txt, using the normalized text", utt_id)
            text_orig = text_norm
        frames, sr, _ = audio_info(wav)
        if frames <= 0:
            return Skipped(utt_id, path, "empty audio (0 samples)")
        if decode:  # full decode: catches truncated or corrupt data behind a valid header
            data, sr = load_audio(wav)
            frames = len(data)
        return Utterance(utt_id, path, round(frames / sr, 4), sr, wav.parent.parent.name, wav.parent.name,
                         text_norm, text_orig)
    except AudioError as e:
        return Skipped(utt_id, path, f"unreadable audio: {e.reason}")
    except Exception as e:  # keep scanning whatever happens to one file
        return Skipped(utt_id, path, f"error: {type(e).__name__}: {e}")


def _reason_key(reason: str) -> str:
    return reason.split(":", 1)[0].split(" (", 1)[0]


def scan_subset(subset_dir: Path, jobs: int = 4, min_duration: float = 0.0, max_duration: float = float("inf"),
                decode: bool = False) -> tuple[list[Utterance], list[Skipped]]:
    """Scan every ``<speaker>/<chapter>/*.wav`` of a subset in parallel; return (kept, skipped), sorted by id."""
    wavs = sorted(subset_dir.glob("*/*/*.wav"))
    kept: list[Utterance] = []
    skipped: list[Skipped] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = pool.map(lambda w: scan_utterance(w, decode), wavs)
        for res in progress(results, total=len(wavs), desc=f"scan {subset_dir.name}", unit="utt"):
            if isinstance(res, Skipped):
                skipped.append(res)
            elif res.duration < min_duration:
                skipped.append(Skipped(res.id, res.path, f"too short ({res.duration:.2f} s < {min_duration} s)"))
            elif res.duration > max_duration:
                skipped.append(Skipped(res.id, res.path, f"too long ({res.duration:.2f} s > {max_duration} s)"))
            else:
                kept.append(res)
    kept.sort(key=lambda u: u.id)
    skipped.sort(key=lambda s: s.id)
    return kept, skipped


def prepare_manifests(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike, subsets: list[str],
                      jobs: int = 4, min_duration: float = 0.0, max_duration: float = float("inf"),
                      decode: bool = False) -> dict[str, ManifestStats]:
    """Write ``<out>/<subset>.jsonl`` and ``<out>/<subset>.skipped.jsonl`` for each subset."""
    out_dir = Path(out_dir)
    stats: dict[str, ManifestStats] = {}
    for subset in subsets:
        kept, skipped = scan_subset(find_subset_dir(corpus_dir, subset), jobs, min_duration, max_duration, decode)
        write_jsonl(out_dir / f"{subset}.jsonl", ({**asdict(u), "path": path_for_file(u.path, out_dir)} for u in kept))
        write_jsonl(out_dir / f"{subset}.skipped.jsonl",
                    ({**asdict(s), "path": path_for_file(s.path, out_dir)} for s in skipped))
        reasons = dict(Counter(_reason_key(s.reason) for s in skipped))
        st = ManifestStats(subset, len(kept), len(skipped), sum(u.duration for u in kept) / 3600,
                           len({u.speaker for u in kept}), reasons)
        stats[subset] = st
        log.info("%s: %d utterances, %.2f h, %d speakers -> %s", subset, st.kept, st.hours, st.speakers,
                 out_dir / f"{subset}.jsonl")
        if skipped:
            log.warning("%s: skipped %d files (%s); details in %s", subset, len(skipped),
                        ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())),
                        out_dir / f"{subset}.skipped.jsonl")
    return stats


def iter_manifest(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Iterate over the rows of a manifest, checking each has the manifest fields; ``path`` resolved
    (see the module docstring)."""
    folder, hint = Path(path).parent, []
    for i, row in enumerate(iter_jsonl(path), 1):
        missing = [k for k in MANIFEST_FIELDS if k not in row]
        if missing:
            raise ValueError(f"{path}: row {i} ({row.get('id', '?')}) lacks fields {missing}")
        row["path"] = path_from_file(row["path"], folder, hint)
        yield row


def read_manifest(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a whole manifest (list of dicts with ``MANIFEST_FIELDS``)."""
    return list(iter_manifest(path))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", required=True, help="directory holding LibriTTS/<subset>/")
    p.add_argument("--out", required=True, help="output directory for <subset>.jsonl")
    p.add_argument("--subsets", nargs="+", required=True)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--min-duration", type=float, default=0.0, help="seconds; shorter files are skipped")
    p.add_argument("--max-duration", type=float, default=float("inf"), help="seconds; longer files are skipped")
    p.add_argument("--decode", action="store_true", help="decode every file fully (slower, catches truncation)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    prepare_manifests(args.corpus_dir, args.out, args.subsets, args.jobs, args.min_duration, args.max_duration,
                      args.decode)


if __name__ == "__main__":
    main()
