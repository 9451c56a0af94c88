"""Leakage check of a train/dev/test split: are the test voices and words really unseen?

    python -m data_prep.check --data-dir data [--out data/check.json] [--no-audio] [--speaker-sim]

Reads ``<data>/manifests/<subset>.jsonl`` (and, when present, ``<data>/phonemes/`` and the corpus's
``speakers.tsv`` / ``mini_corpus.json`` found beside the audio). Train subsets are ``train-*``, dev
``dev-*``, test ``test-*`` unless ``--train/--dev/--test`` say otherwise. Prints a Markdown report and
writes the numbers as JSON. Works for any LibriTTS-layout corpus; the voice-design and hand-written
sentence rows need the mini corpus's records and say "n/a" otherwise.

What it measures (held-out = dev or test):

* speakers: held-out speaker ids also in training; for the mini corpus, espeak-ng timbres (variants)
  and cells shared with training (stock voices: pitch/speed cells; designed voices: cells of the vocal-tract
  x pitch grid, and each held-out voice's distance to the nearest training voice in that grid); measured median F0 of each held-out speaker and its
  distance (semitones) to the nearest training speaker; optionally (``--speaker-sim``, needs
  resemblyzer) the cosine similarity of each held-out speaker to its nearest training speaker;
* text: held-out word types/tokens never seen in training, held-out 2/3/4-grams seen in training,
  held-out sentences identical to a training sentence, the corpus's test-only word list and
  hand-written held-out sentences found in training, share of template vs hand-written sentences;
* symbols: table symbols never seen in training, held-out symbols unseen in training, ``<unk>`` count;
* audio: leading/trailing silence, files whose peak reaches the limiter (>= 0.99 full scale).
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.io import atomic_write_text, iter_jsonl
from core.logs import setup_logging
from data_prep.check_audio import LIMITER_PEAK, audio_stats, speaker_features
from data_prep.libritts import read_manifest
from data_prep.mini_design import design_position

log = logging.getLogger(__name__)

__all__ = ["LeakageReport", "check_corpus", "words", "ngrams"]

_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (punctuation dropped; hyphenated words split)."""
    return _WORD_RE.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _sentence_key(text: str) -> str:
    return " ".join(words(text))


@dataclass
class SplitReport:
    """Leakage of one held-out split (dev or test) with respect to training."""
    subsets: list[str]
    utterances: int = 0
    speakers: int = 0
    speakers_in_train: int = 0
    timbres: list[str] = field(default_factory=list)
    timbres_in_train: list[str] = field(default_factory=list)
    speakers_with_train_timbre: int | None = None
    cells_in_train: int | None = None           # cells used by training (stock: pitch/speed; designed: tract/pitch)
    # designed voices: each held-out voice's distance to the nearest training voice in the design grid
    # (bands, the larger of the tract and pitch differences; >= 2 * cell margin by construction)
    design_nearest_train_bands: dict[str, float] = field(default_factory=dict)
    f0_median_hz: dict[str, float] = field(default_factory=dict)
    f0_nearest_train_semitones: dict[str, float] = field(default_factory=dict)
    nearest_train_similarity: dict[str, float] = field(default_factory=dict)
    word_types: int = 0
    word_types_unseen: int = 0
    word_tokens_unseen_frac: float = 0.0
    ngrams_in_train_frac: dict[str, float] = field(default_factory=dict)
    sentences_in_train: int = 0
    handwritten_sentences: int | None = None
    handwritten_in_train: int | None = None
    template_frac: float | None = None
    heldout_words_listed: int | None = None      # the corpus's own held-out word list
    heldout_words_in_train: int | None = None
    heldout_words_used: int | None = None
    symbols_unseen_in_train: list[str] = field(default_factory=list)


@dataclass
class LeakageReport:
    """What :func:`check_corpus` measured (see the module docstring)."""
    data_dir: str
    train_subsets: list[str]
    train_utterances: int
    train_speakers: int
    train_word_types: int
    train_timbres: list[str]
    splits: dict[str, SplitReport]
    symbols: dict[str, Any]
    audio: dict[str, Any]
    corpus: dict[str, Any]


# ----------------------------------------------------------------------------- corpus records
def _corpus_root(rows: list[dict]) -> Path | None:
    """``.../LibriTTS`` of the first row's audio (``<root>/<subset>/<spk>/<chap>/<utt>.wav``)."""
    for r in rows[:1]:
        p = Path(r["path"])
        if len(p.parents) >= 4:
            return p.parents[3]
    return None


def _speaker_designs(root: Path | None) -> dict[str, dict]:
    """speaker id -> {voice, variant, pitch, speed} from mini_corpus.json (or speakers.tsv's NAME)."""
    if root is None:
        return {}
    meta = root / "mini_corpus.json"
    if meta.exists():
        data = json.loads(meta.read_text(encoding="utf-8"))
        return {str(s["id"]): s for s in data.get("speakers", [])}
    tsv, out = root / "speakers.tsv", {}
    if tsv.exists():
        for line in tsv.read_text(encoding="utf-8").splitlines()[1:]:
            parts = line.split("\t")
            m = re.match(r"(\S+)\+(\S+) p(\d+) s(\d+)", parts[-1]) if len(parts) >= 4 else None
            if m:
                out[parts[0]] = {"voice": m.group(1), "variant": m.group(2), "pitch": int(m.group(3)),
                                 "speed": int(m.group(4))}
    return out


def _corpus_meta(root: Path | None) -> dict:
    if root is None or not (root / "mini_corpus.json").exists():
        return {}
    return json.loads((root / "mini_corpus.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- audio
# ----------------------------------------------------------------------------- the check
def _split_names(manifest_dir: Path, train, dev, test) -> tuple[list[str], list[str], list[str]]:
    names = sorted(p.name[: -len(".jsonl")] for p in manifest_dir.glob("*.jsonl") if not p.name.endswith(".skipped.jsonl"))
    pick = lambda given, prefix: list(given) if given else [n for n in names if n.startswith(prefix)]
    return pick(train, "train"), pick(dev, "dev"), pick(test, "test")


@dataclass
class _Train:
    """What the training subsets hold, to compare each held-out split with."""
    rows: list[dict]
    designs: dict[str, dict]            # the mini corpus's speaker designs ({} otherwise)
    vocab: set[str] = field(default_factory=set)
    ngrams: dict[int, set[tuple[str, ...]]] = field(default_factory=dict)
    sentences: set[str] = field(default_factory=set)
    speakers: set[str] = field(default_factory=set)
    timbres: list[str] = field(default_factory=list)
    cells: set[tuple] = field(default_factory=set)

    def timbre(self, spk: str):
        return self.designs[spk]["variant"] if spk in self.designs else None


def _training(train_rows: list[dict], designs: dict[str, dict]) -> _Train:
    tr = _Train(train_rows, designs)
    tokens = [words(r["text_norm"]) for r in train_rows]
    tr.vocab = {w for t in tokens for w in t}
    tr.ngrams = {n: {g for t in tokens for g in ngrams(t, n)} for n in (2, 3, 4)}
    tr.sentences = {_sentence_key(r["text_norm"]) for r in train_rows} | \
                   {_sentence_key(r["text_orig"]) for r in train_rows}
    tr.speakers = {str(r["speaker"]) for r in train_rows}
    tr.timbres = sorted({tr.timbre(s) for s in tr.speakers} - {None})
    tr.cells = {tuple(designs[s].get("cell", ())) for s in tr.speakers if s in designs and "cell" in designs[s]}
    return tr


def check_corpus(data_dir: str | Path, train: list[str] | None = None, dev: list[str] | None = None,
                 test: list[str] | None = None, audio: bool = True, speaker_sim: bool = False,
                 f0_files: int = 3) -> LeakageReport:
    """Measure the leakage of dev/test into training (see the module docstring)."""
    data_dir = Path(data_dir)
    mdir = data_dir / "manifests"
    train, dev, test = _split_names(mdir, train, dev, test)
    if not train or not (dev or test):
        raise ValueError(f"{mdir}: need train and dev/test manifests (found train={train} dev={dev} test={test})")
    rows = {s: read_manifest(mdir / f"{s}.jsonl") for s in [*train, *dev, *test]}
    train_rows = [r for s in train for r in rows[s]]
    root = _corpus_root(train_rows)
    designs, meta = _speaker_designs(root), _corpus_meta(root)
    tr = _training(train_rows, designs)
    phon, symbols = _symbols(data_dir / "phonemes", rows, train)
    f0, emb = speaker_features(rows, audio, speaker_sim, f0_files)
    splits: dict[str, SplitReport] = {}
    for name, subs in (("dev", dev), ("test", test)):
        if not subs:
            continue
        hr = [r for s in subs for r in rows[s]]
        rep = SplitReport(subsets=subs, utterances=len(hr))
        _speaker_leakage(rep, sorted({str(r["speaker"]) for r in hr}), tr, f0, emb)
        _text_leakage(rep, name, hr, tr, meta.get("sentences", {}), root)
        if symbols:
            tr_sym = {t for s in train for p in phon.get(s, {}).values() for t in p.split()}
            ho_sym = {t for s in subs for p in phon.get(s, {}).values() for t in p.split()}
            rep.symbols_unseen_in_train = sorted(ho_sym - tr_sym)
        splits[name] = rep
    audio_summary = audio_stats([r for s in rows for r in rows[s]]) if audio else {}
    corpus = {k: meta[k] for k in ("espeak_ng_version", "corpus_version", "accents", "seed") if k in meta}
    return LeakageReport(str(data_dir), train, len(train_rows), len(tr.speakers), len(tr.vocab), tr.timbres,
                         splits, symbols, audio_summary, corpus)


def _symbols(pdir: Path, rows: dict[str, list[dict]], train: list[str]
             ) -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    """({subset: {id: phonemes}}, the symbol table's use) of the phonemes stage's output ({} without it)."""
    phon: dict[str, dict[str, str]] = {}
    symbols: dict[str, Any] = {}
    if (pdir / "tokens.txt").exists():
        from data_prep.symbols import SPECIALS, UNK, SymbolTable

        table = SymbolTable.load(pdir / "tokens.txt")
        for s in rows:
            if (pdir / f"{s}.jsonl").exists():
                phon[s] = {r["id"]: r["phonemes"] for r in iter_jsonl(pdir / f"{s}.jsonl")}
        count = lambda subs: Counter(t for s in subs for p in phon.get(s, {}).values() for t in p.split())
        tr_sym = count(train)
        real = [x for x in table.symbols if x not in SPECIALS]
        symbols = {"table": len(table), "non_special": len(real),
                   "in_train": sum(1 for x in real if tr_sym[x]),
                   "never_in_train": sum(1 for x in real if not tr_sym[x]),
                   "unk_tokens": count(list(rows))[UNK],
                   "frontend": json.loads((pdir / "frontend.json").read_text(encoding="utf-8"))
                   if (pdir / "frontend.json").exists() else None}
    return phon, symbols


def _speaker_leakage(rep: SplitReport, spks: list[str], tr: _Train, f0: dict, emb: dict) -> None:
    """Held-out speakers (their timbres, cells, F0 and embeddings) against the training speakers."""
    rep.speakers = len(spks)
    rep.speakers_in_train = sum(s in tr.speakers for s in spks)
    rep.timbres = sorted({tr.timbre(s) for s in spks} - {None})
    rep.timbres_in_train = sorted(set(rep.timbres) & set(tr.timbres))
    if tr.designs:
        rep.speakers_with_train_timbre = sum(tr.timbre(s) in tr.timbres for s in spks)
    if tr.cells:
        rep.cells_in_train = sum(tuple(tr.designs[s].get("cell", ())) in tr.cells for s in spks if s in tr.designs)
    placed = {t: design_position(tr.designs[t]["tract"], tr.designs[t]["pitch_hz"]) for t in tr.speakers
              if tr.designs.get(t, {}).get("tract")}
    for s in spks:
        d = tr.designs.get(s, {})
        if placed and d.get("tract"):
            x = design_position(d["tract"], d["pitch_hz"])
            rep.design_nearest_train_bands[s] = round(min(max(abs(x[0] - y[0]), abs(x[1] - y[1]))
                                                          for y in placed.values()), 3)
        if s in f0:
            rep.f0_median_hz[s] = round(f0[s], 1)
            others = [f0[t] for t in tr.speakers if t in f0]
            rep.f0_nearest_train_semitones[s] = round(min(abs(12 * np.log2(f0[s] / o)) for o in others), 2)
        if s in emb:
            rep.nearest_train_similarity[s] = round(max(float(emb[s] @ emb[t]) for t in tr.speakers if t in emb), 3)


def _text_leakage(rep: SplitReport, name: str, hr: list[dict], tr: _Train, records: dict, root: Path | None) -> None:
    """Held-out words, n-grams and sentences against training; the corpus's hand-written sentences and
    held-out word lists (the mini corpus's records)."""
    toks = [words(r["text_norm"]) for r in hr]
    vocab = {w for t in toks for w in t}
    rep.word_types = len(vocab)
    rep.word_types_unseen = len(vocab - tr.vocab)
    flat = [w for t in toks for w in t]
    rep.word_tokens_unseen_frac = round(sum(w not in tr.vocab for w in flat) / max(1, len(flat)), 4)
    for n in (2, 3, 4):
        grams = [g for t in toks for g in ngrams(t, n)]
        rep.ngrams_in_train_frac[str(n)] = round(sum(g in tr.ngrams[n] for g in grams) / max(1, len(grams)), 4)
    rep.sentences_in_train = sum(_sentence_key(r["text_norm"]) in tr.sentences for r in hr)
    hand = records.get(f"handwritten_{name}")
    if hand is None and name in ("dev", "test") and root is not None and (root / "mini_corpus.json").exists():
        from data_prep.sentences import BUNDLED_V1  # a corpus made before the records (version 1)

        hand = list(BUNDLED_V1)
    if hand is not None:
        hand_keys = {_sentence_key(h) for h in hand}
        rep.handwritten_sentences = len(hand_keys)
        rep.handwritten_in_train = len(hand_keys & tr.sentences)
        used = sum(_sentence_key(r["text_orig"]) in hand_keys for r in hr)
        rep.template_frac = round(1 - used / max(1, len(hr)), 4)
    listed = records.get(f"{name}_only_words")
    if listed is not None:
        lw = {w.lower() for w in listed}
        rep.heldout_words_listed = len(lw)
        rep.heldout_words_in_train = len(lw & tr.vocab)
        rep.heldout_words_used = len(lw & vocab)


# ----------------------------------------------------------------------------- report
def _fmt_list(xs: list, n: int = 8) -> str:
    return ", ".join(map(str, xs[:n])) + (f", ... ({len(xs)})" if len(xs) > n else "") if xs else "none"


def format_report(rep: LeakageReport) -> str:
    """A Markdown report of the numbers."""
    na = lambda v: "n/a" if v is None else v
    lines = [f"# Leakage check of {rep.data_dir}", "",
             f"training: {rep.train_utterances} utterances, {rep.train_speakers} speakers, {rep.train_word_types} word "
             f"types, {len(rep.train_timbres)} timbres ({', '.join(rep.train_subsets)})", ""]
    names = list(rep.splits)
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    row = lambda label, f: lines.append(f"| {label} | " + " | ".join(str(f(rep.splits[n])) for n in names) + " |")
    row("utterances / speakers", lambda s: f"{s.utterances} / {s.speakers}")
    row("speakers also in training", lambda s: s.speakers_in_train)
    row("timbres shared with training", lambda s: f"{len(s.timbres_in_train)} of {len(s.timbres)}"
        + (f" ({_fmt_list(s.timbres_in_train, 4)})" if s.timbres_in_train else "") if s.timbres else "n/a")
    row("speakers with a training timbre", lambda s: na(s.speakers_with_train_timbre))
    row("speakers in a training cell (stock: pitch/speed; designed: tract/pitch)", lambda s: na(s.cells_in_train))
    row("designed voice to nearest training voice, bands (min / median)",
        lambda s: f"{min(s.design_nearest_train_bands.values()):.2f} / "
                  f"{statistics.median(s.design_nearest_train_bands.values()):.2f}" if s.design_nearest_train_bands else "n/a")
    row("F0 to nearest training speaker, semitones (min / median)",
        lambda s: f"{min(s.f0_nearest_train_semitones.values()):.2f} / "
                  f"{statistics.median(s.f0_nearest_train_semitones.values()):.2f}" if s.f0_nearest_train_semitones else "n/a")
    row("similarity to nearest training speaker (max / median)",
        lambda s: f"{max(s.nearest_train_similarity.values()):.3f} / "
                  f"{statistics.median(s.nearest_train_similarity.values()):.3f}" if s.nearest_train_similarity else "n/a")
    row("word types unseen in training", lambda s: f"{s.word_types_unseen} of {s.word_types}")
    row("word tokens unseen in training", lambda s: f"{100 * s.word_tokens_unseen_frac:.1f} %")
    for n in ("2", "3", "4"):
        row(f"{n}-grams seen in training", lambda s, n=n: f"{100 * s.ngrams_in_train_frac[n]:.1f} %")
    row("sentences identical to a training sentence", lambda s: s.sentences_in_train)
    row("held-out word list: words in training", lambda s: "n/a" if s.heldout_words_listed is None
        else f"{s.heldout_words_in_train} of {s.heldout_words_listed} (used: {s.heldout_words_used})")
    row("hand-written sentences in training", lambda s: "n/a" if s.handwritten_sentences is None
        else f"{s.handwritten_in_train} of {s.handwritten_sentences}")
    row("template sentences", lambda s: "n/a" if s.template_frac is None else f"{100 * s.template_frac:.1f} %")
    row("symbols unseen in training", lambda s: _fmt_list(s.symbols_unseen_in_train) if rep.symbols else "n/a")
    if rep.symbols:
        sy = rep.symbols
        lines += ["", f"symbols: {sy['non_special']} in the table (without specials), {sy['in_train']} occur in "
                      f"training, {sy['never_in_train']} never do; <unk> tokens: {sy['unk_tokens']}"]
    if rep.audio:
        a = rep.audio
        lines += ["", f"audio ({a['files']} files): leading silence median {a['lead_silence_ms_median']} ms "
                      f"(p10 {a['lead_silence_ms_p10']}, p90 {a['lead_silence_ms_p90']}), trailing median "
                      f"{a['trail_silence_ms_median']} ms; peak >= {LIMITER_PEAK}: {100 * a['peak_limited_frac']:.1f} % "
                      f"of files, >= 0.999: {100 * a['peak_0999_frac']:.1f} % (max peak {a['peak_max']})"]
    if rep.corpus:
        lines += ["", "corpus: " + ", ".join(f"{k}={v}" for k, v in rep.corpus.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="directory with manifests/ (and phonemes/)")
    p.add_argument("--train", nargs="*", default=None, help="training subsets (default: train-*)")
    p.add_argument("--dev", nargs="*", default=None, help="dev subsets (default: dev-*)")
    p.add_argument("--test", nargs="*", default=None, help="test subsets (default: test-*)")
    p.add_argument("--out", default=None, help="JSON output (default: <data-dir>/check.json)")
    p.add_argument("--no-audio", action="store_true", help="skip the audio measurements (F0, silences, peaks)")
    p.add_argument("--speaker-sim", action="store_true", help="speaker-embedding similarity (needs resemblyzer)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    rep = check_corpus(args.data_dir, args.train, args.dev, args.test, audio=not args.no_audio,
                       speaker_sim=args.speaker_sim)
    text = format_report(rep)
    print(text, end="")
    out = Path(args.out) if args.out else Path(args.data_dir) / "check.json"
    atomic_write_text(out, json.dumps(asdict(rep), indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out.with_suffix(".md"), text)
    log.info("wrote %s and %s", out, out.with_suffix(".md"))


if __name__ == "__main__":
    main()
