"""The phonemes stage: every manifest text through the text front end, to ``<subset>.jsonl`` + the table.

    python -m data_prep.phonemes --manifests data/manifests --out data/phonemes \
        --subsets train-clean-100 dev-clean test-clean --jobs 4

Written: ``<out>/<subset>.jsonl`` with lines ``{"id": ..., "phonemes": "h ə l ˈ oʊ , _ w ..."}``
(same order as the manifest; plus ``"language"`` for a speaker phonemised with its own accent) and,
through :class:`data_prep.frontend.TextFrontend` (which normalises every text first, so LibriTTS's
``text_norm`` and inference input go through the same normaliser), ``<out>/tokens.txt`` (``symbol id``
per line) + ``<out>/frontend.json`` (settings + fingerprint). A subset whose output already covers
its manifest with the same front end is skipped (``--force`` redoes it); every write is atomic.

The tokens (data_prep/espeak.py) and the fixed, versioned symbol table (data_prep/symbols.py) are
described in those modules; a phone outside the table becomes ``<unk>`` (with a warning) in the front
end, the same in training and inference.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from core.io import iter_jsonl, write_jsonl
from core.logs import setup_logging
from data_prep.frontend import TextFrontend
from data_prep.libritts import read_manifest

log = logging.getLogger(__name__)

__all__ = ["prepare_phonemes", "read_speaker_languages"]


# ----------------------------------------------------------------------------- stage
def _is_complete(out_file: Path, ids: list[str], languages: list[str]) -> bool:
    if not out_file.exists():
        return False
    try:
        rows = list(iter_jsonl(out_file))
        return [r["id"] for r in rows] == ids and [r.get("language") for r in rows] == languages
    except (ValueError, KeyError):
        return False


def read_speaker_languages(path: str | os.PathLike) -> dict[str, str]:
    """A ``speaker<TAB>language`` TSV (the mini corpus's ``accents.tsv``) -> {speaker: espeak voice}."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path}:{lineno}: expected 'speaker<TAB>language', got {line!r}")
        out[parts[0]] = parts[1]
    return out


def prepare_phonemes(manifest_dir: str | os.PathLike, out_dir: str | os.PathLike, subsets: list[str],
                     jobs: int = 1, language: str = "en-us", force: bool = False,
                     speaker_languages: dict[str, str] | None = None) -> TextFrontend:
    """Phonemize each subset's manifest through the front end; write ``tokens.txt`` + ``frontend.json``.

    ``language`` is the front end's (default) accent; ``speaker_languages`` optionally gives a speaker's
    own accent (its utterances are phonemised with it and the row records ``"language"``).
    Returns the :class:`data_prep.frontend.TextFrontend` used.
    """
    manifest_dir, out_dir = Path(manifest_dir), Path(out_dir)
    fe = TextFrontend.default(language)
    try:  # another front end made the existing files: redo them all
        stale = TextFrontend.load(out_dir).fingerprint() != fe.fingerprint()
    except (FileNotFoundError, ValueError):
        stale = True
    if stale and not force and any((out_dir / f"{s}.jsonl").exists() for s in subsets):
        log.info("%s was made by another front end (or none recorded): phonemizing again", out_dir)
    speaker_languages = speaker_languages or {}
    for subset in subsets:
        rows = read_manifest(manifest_dir / f"{subset}.jsonl")
        out_file = out_dir / f"{subset}.jsonl"
        ids = [r["id"] for r in rows]
        langs = [speaker_languages.get(str(r["speaker"])) for r in rows]  # None: the front end's default
        if not force and not stale and _is_complete(out_file, ids, langs):
            log.info("%s: phonemes already complete in %s, skipping", subset, out_file)
            continue
        seqs: list[list[str]] = [[] for _ in rows]
        for lang in sorted(set(langs), key=str):
            idx = [i for i, l in enumerate(langs) if l == lang]
            for i, seq in zip(idx, fe.phonemize([rows[i]["text_norm"] for i in idx], lang, jobs=jobs, progress=True)):
                seqs[i] = seq
        out_rows = []
        for i, s, l in zip(ids, seqs, langs):
            out_rows.append({"id": i, "phonemes": " ".join(s), **({"language": l} if l else {})})
        write_jsonl(out_file, out_rows)
        log.info("%s: %d utterances phonemized -> %s", subset, len(seqs), out_file)
        empty = [i for i, s in zip(ids, seqs) if not s]
        if empty:
            log.warning("%s: %d utterances have no phonemes (e.g. %s)", subset, len(empty), empty[:3])
    fe.save(out_dir)
    log.info("front end %s -> %s", fe, out_dir)
    return fe


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifests", required=True, help="directory with <subset>.jsonl manifests")
    p.add_argument("--out", required=True, help="output directory for <subset>.jsonl and tokens.txt")
    p.add_argument("--subsets", nargs="+", required=True)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--language", default="en-us", help="espeak voice/accent of the front end (its default)")
    p.add_argument("--speaker-languages", default=None,
                   help="TSV 'speaker<TAB>language': phonemise these speakers with their own accent")
    p.add_argument("--force", action="store_true", help="redo subsets that are already complete")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    spk_lang = read_speaker_languages(args.speaker_languages) if args.speaker_languages else None
    prepare_phonemes(args.manifests, args.out, args.subsets, args.jobs, args.language, args.force, spk_lang)


if __name__ == "__main__":
    main()
