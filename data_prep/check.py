"""Leakage check of a train/dev/test split: are the test voices and words really unseen?

    python -m data_prep.check --data-dir data [--out data/check.json] [--no-audio] [--speaker-sim]

Reads ``<data>/manifests/<subset>.jsonl`` (and, when present, ``<data>/phonemes/`` and the corpus's
``speakers.tsv`` / ``mini_corpus.json`` found beside the audio). Train subsets are ``train-*``, dev
``dev-*``, test ``test-*`` unless ``--train/--dev/--test`` say otherwise. Prints a Markdown report and
writes the numbers as JSON. Works for any LibriTTS-layout corpus; the voice-design and hand-written
sentence rows need the mini corpus's records and say "n/a" otherwise.

What it measures (held-out = dev or test):

* speakers: held-out speaker ids also in training; for the mini corpus, espeak-ng timbres (variants)
  and pitch/speed cells shared with training; measured median F0 of each held-out speaker and its
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
from tqdm import tqdm

from core.io import atomic_write_text, iter_jsonl
from core.logs import setup_logging
from data_prep.libritts import read_manifest

log = logging.getLogger(__name__)

__all__ = ["LeakageReport", "check_corpus", "words", "ngrams"]

_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")
PEAK_LIMIT = 0.99


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
    cells_in_train: int | None = None           # (timbre-independent) pitch/speed cells used by training
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
def _median_f0(paths: list[str]) -> float:
    """Median F0 (Hz) over the voiced frames of a few files (librosa's YIN; a cheap speaker proxy)."""
    import librosa

    from data_prep.audio import load_audio

    f0s = []
    for p in paths:
        wav, sr = load_audio(p)
        f0 = librosa.yin(wav, fmin=50, fmax=500, sr=sr, frame_length=2048, hop_length=512)
        e = librosa.feature.rms(y=wav, frame_length=2048, hop_length=512)[0]
        n = min(len(f0), len(e))
        f0s.extend(f0[:n][e[:n] > 0.1 * e.max()].tolist())
    return float(np.median(f0s)) if f0s else float("nan")


def _silences(path: str, threshold_db: float = -45.0) -> tuple[float, float, float]:
    """(leading silence s, trailing silence s, peak) of one file; silence = 10 ms frames below
    ``threshold_db`` relative to the file's peak."""
    from data_prep.audio import load_audio

    wav, sr = load_audio(path)
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    frame = int(0.01 * sr)
    n = len(wav) // frame
    if n == 0 or peak == 0:
        return 0.0, 0.0, peak
    energy = 20 * np.log10(np.sqrt(np.mean(wav[: n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-9)
    voiced = np.flatnonzero(energy > threshold_db + 20 * np.log10(peak))
    if voiced.size == 0:
        return len(wav) / sr, 0.0, peak
    return voiced[0] * 0.01, (n - 1 - voiced[-1]) * 0.01, peak


def _speaker_embeddings(paths_by_spk: dict[str, list[str]]) -> dict[str, np.ndarray]:
    from resemblyzer import VoiceEncoder, preprocess_wav

    from data_prep.audio import load_audio

    enc = VoiceEncoder("cpu", verbose=False)
    out = {}
    for spk, paths in tqdm(paths_by_spk.items(), desc="speaker embeddings", disable=None):
        wavs = [preprocess_wav(load_audio(p, sample_rate=16000)[0], source_sr=16000) for p in paths]
        out[spk] = enc.embed_speaker(wavs)
    return out


# ----------------------------------------------------------------------------- the check
def _split_names(manifest_dir: Path, train, dev, test) -> tuple[list[str], list[str], list[str]]:
    names = sorted(p.name[: -len(".jsonl")] for p in manifest_dir.glob("*.jsonl") if not p.name.endswith(".skipped.jsonl"))
    pick = lambda given, prefix: list(given) if given else [n for n in names if n.startswith(prefix)]
    return pick(train, "train"), pick(dev, "dev"), pick(test, "test")


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
    records = meta.get("sentences", {})

    tr_tokens = [words(r["text_norm"]) for r in train_rows]
    tr_vocab = {w for t in tr_tokens for w in t}
    tr_ngrams = {n: {g for t in tr_tokens for g in ngrams(t, n)} for n in (2, 3, 4)}
    tr_sentences = {_sentence_key(r["text_norm"]) for r in train_rows} | \
                   {_sentence_key(r["text_orig"]) for r in train_rows}
    tr_speakers = {str(r["speaker"]) for r in train_rows}
    timbre = lambda spk: designs[spk]["variant"] if spk in designs else None
    tr_timbres = sorted({timbre(s) for s in tr_speakers} - {None})
    tr_cells = {tuple(designs[s].get("cell", ())) for s in tr_speakers if s in designs and "cell" in designs[s]}

    # phonemes / symbols
    pdir = data_dir / "phonemes"
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

    # per-speaker F0 / embeddings
    by_spk: dict[str, list[str]] = {}
    for s in rows:
        for r in rows[s]:
            by_spk.setdefault(str(r["speaker"]), []).append(r["path"])
    f0 = {}
    if audio:
        for spk, paths in tqdm(sorted(by_spk.items()), desc="median F0", disable=None):
            f0[spk] = _median_f0(paths[:f0_files])
    emb = _speaker_embeddings({k: v[:f0_files] for k, v in by_spk.items()}) if speaker_sim else {}

    splits: dict[str, SplitReport] = {}
    for name, subs in (("dev", dev), ("test", test)):
        if not subs:
            continue
        hr = [r for s in subs for r in rows[s]]
        rep = SplitReport(subsets=subs, utterances=len(hr))
        spks = sorted({str(r["speaker"]) for r in hr})
        rep.speakers = len(spks)
        rep.speakers_in_train = sum(s in tr_speakers for s in spks)
        rep.timbres = sorted({timbre(s) for s in spks} - {None})
        rep.timbres_in_train = sorted(set(rep.timbres) & set(tr_timbres))
        if designs:
            rep.speakers_with_train_timbre = sum(timbre(s) in tr_timbres for s in spks)
        if tr_cells:
            rep.cells_in_train = sum(tuple(designs[s].get("cell", ())) in tr_cells for s in spks if s in designs)
        for s in spks:
            if s in f0:
                rep.f0_median_hz[s] = round(f0[s], 1)
                others = [f0[t] for t in tr_speakers if t in f0]
                rep.f0_nearest_train_semitones[s] = round(min(abs(12 * np.log2(f0[s] / o)) for o in others), 2)
            if s in emb:
                rep.nearest_train_similarity[s] = round(max(float(emb[s] @ emb[t]) for t in tr_speakers if t in emb), 3)
        toks = [words(r["text_norm"]) for r in hr]
        vocab = {w for t in toks for w in t}
        rep.word_types = len(vocab)
        rep.word_types_unseen = len(vocab - tr_vocab)
        flat = [w for t in toks for w in t]
        rep.word_tokens_unseen_frac = round(sum(w not in tr_vocab for w in flat) / max(1, len(flat)), 4)
        for n in (2, 3, 4):
            grams = [g for t in toks for g in ngrams(t, n)]
            rep.ngrams_in_train_frac[str(n)] = round(sum(g in tr_ngrams[n] for g in grams) / max(1, len(grams)), 4)
        rep.sentences_in_train = sum(_sentence_key(r["text_norm"]) in tr_sentences for r in hr)
        hand = records.get(f"handwritten_{name}")
        if hand is None and name in ("dev", "test") and root is not None and (root / "mini_corpus.json").exists():
            from data_prep.sentences import BUNDLED_V1  # a corpus made before the records (version 1)

            hand = list(BUNDLED_V1)
        if hand is not None:
            hand_keys = {_sentence_key(h) for h in hand}
            rep.handwritten_sentences = len(hand_keys)
            rep.handwritten_in_train = len(hand_keys & tr_sentences)
            used = sum(_sentence_key(r["text_orig"]) in hand_keys for r in hr)
            rep.template_frac = round(1 - used / max(1, len(hr)), 4)
        listed = records.get(f"{name}_only_words")
        if listed is not None:
            lw = {w.lower() for w in listed}
            rep.heldout_words_listed = len(lw)
            rep.heldout_words_in_train = len(lw & tr_vocab)
            rep.heldout_words_used = len(lw & vocab)
        if symbols:
            tr_sym = {t for s in train for p in phon.get(s, {}).values() for t in p.split()}
            ho_sym = {t for s in subs for p in phon.get(s, {}).values() for t in p.split()}
            rep.symbols_unseen_in_train = sorted(ho_sym - tr_sym)
        splits[name] = rep

    audio_stats: dict[str, Any] = {}
    if audio:
        all_rows = [r for s in rows for r in rows[s]]
        res = [_silences(r["path"]) for r in tqdm(all_rows, desc="silences", disable=None)]
        lead, trail, peaks = zip(*res)
        audio_stats = {"files": len(res), "lead_silence_ms_median": round(1000 * statistics.median(lead)),
                       "lead_silence_ms_p10": round(1000 * float(np.percentile(lead, 10))),
                       "lead_silence_ms_p90": round(1000 * float(np.percentile(lead, 90))),
                       "trail_silence_ms_median": round(1000 * statistics.median(trail)),
                       "peak_limited_frac": round(sum(p >= PEAK_LIMIT for p in peaks) / len(peaks), 4),
                       "peak_0999_frac": round(sum(p >= 0.999 for p in peaks) / len(peaks), 4),
                       "peak_max": round(max(peaks), 4)}
    corpus = {k: meta[k] for k in ("espeak_ng_version", "corpus_version", "accents", "seed") if k in meta}
    return LeakageReport(str(data_dir), train, len(train_rows), len(tr_speakers), len(tr_vocab), tr_timbres,
                         splits, symbols, audio_stats, corpus)


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
    row("speakers in a training pitch/speed cell", lambda s: na(s.cells_in_train))
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
                      f"{a['trail_silence_ms_median']} ms; peak >= {PEAK_LIMIT}: {100 * a['peak_limited_frac']:.1f} % "
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
