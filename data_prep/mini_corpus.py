"""A multi-speaker English corpus synthesized with espeak-ng, in LibriTTS's exact layout.

    python -m data_prep.mini_corpus --root data/mini --size default --jobs 4

Written under ``<root>/LibriTTS/`` at 24 kHz, 16-bit mono (espeak's 22,050 Hz resampled with soxr)::

    <subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para>_<sent>.wav
                                 ... .normalized.txt  .original.txt
    <subset>/<speaker>/<chapter>/<speaker>_<chapter>.trans.tsv   (id, original, normalized)
    <subset>/.ndvq_complete    speakers.tsv    mini_corpus.json (the settings used)

Subsets: ``train-clean-100``, ``dev-clean``, ``test-clean``, built for zero-shot evaluation:

* voices: every speaker is an espeak-ng *timbre* (a variant, +m2, +f3, +Annie, ...) at a pitch (-p) and
  speed (-s). The timbres of the test speakers, those of the dev speakers (an unseen-speaker validation
  split) and those of training are disjoint (:data:`TIMBRES`: variants grouped by a speaker encoder's
  similarity, a group never split across subsets), and dev/test speakers sit in pitch/speed cells no
  training speaker uses (:func:`cell_of`; the grid interleaves, so held-out voices are inside the
  training range, not beyond it). Variants espeak-ng would silently replace by its default voice, or
  two variants giving the same audio, stop the build (:func:`check_voices`);
* accent: one accent (``en-us``) for every speaker by default, so the phonemes (en-us) match what was
  spoken; ``--accents per-speaker`` spreads 8 English accents over the speakers instead and writes
  ``accents.tsv`` for the phonemes stage (``--speaker-languages``). Measured on the same 32 speakers
  (variants, pitches, speeds) x 5 sentences, twice (two seeds), with resemblyzer speaker embeddings:
  per-speaker accents gave a mean nearest-neighbour speaker similarity of 0.894 / 0.884 and a
  leave-one-out speaker-ID accuracy of 86.3 / 88.1 %, one accent 0.904 / 0.890 and 85.6 / 87.5 %
  (F0 spread 7.8 / 7.9 vs 8.5 / 8.3 semitones; closest pair 0.992 / 0.995 vs 0.971 / 0.978). Accents
  add about 1 point of distinctness, within the seed-to-seed change, for a second phoneme inventory
  a zero-shot test would have to match: hence one accent by default;
* text: from :mod:`data_prep.sentences`; dev and test have their own hand-written sentences and
  vocabularies (words that occur in no other subset); espeak reads the normalized text;
* audio: trimmed, level-normalised on the speech (speaker level plus a small per-utterance jitter,
  low enough that no file reaches the peak limit), then padded with a random leading (0.1-0.45 s) and
  trailing (0.1-0.3 s) silence.

``mini_corpus.json`` records every setting (sizes, seed, timbres, cells, levels, the espeak-ng
version, the held-out word lists and hand-written sentences): :mod:`data_prep.check` reads it.

Deterministic for a seed (every random choice is made up front from ``random.Random(seed)``).
Resumable: an utterance whose wav exists is kept (wav files are written last and atomically).
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import random
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
from tqdm import tqdm

from data_prep.audio import audio_info, resample, rms, save_audio
from core.io import atomic_write_text
from core.logs import setup_logging
from data_prep.sentences import handwritten, heldout_words, make_sentences

log = logging.getLogger(__name__)

CORPUS_VERSION = "2"
SAMPLE_RATE = 24_000
ESPEAK_RATE = 22_050
SUBSETS: tuple[str, str, str] = ("train-clean-100", "dev-clean", "test-clean")
SPLIT_OF_SUBSET = dict(zip(SUBSETS, ("train", "dev", "test")))
SENTINEL = ".ndvq_complete"
ACCENTS_FILE = "accents.tsv"
AccentPolicy = Literal["single", "per-speaker"]
DEFAULT_ACCENT = "en-us"
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
# espeak-ng 1.51 ignores the variant of "en-gb+m2" (every en-gb+variant is the plain en-gb voice: a
# silent substitution check_voices catches); its "en" voice is the same accent and takes variants
ESPEAK_VOICE_NAME = {"en-gb": "en"}

# espeak-ng 1.51 variants by subset and gender. Chosen from a survey of all 102 variants (3 sentences
# each, resemblyzer speaker embeddings, en-us): robotic/whispering ones left out; variants closer than
# 0.93 cosine similarity form one group and a group stays within one subset; the held-out variants
# are those least similar to any training variant (nearest training variant 0.74-0.82 for test).
# Identical audio (klatt = klatt6 = caleb) and near-copies (steph2/steph3, Gene/Gene2, ...) are used
# once at most. Female variants are few, so training reuses them at other pitches/speeds.
TIMBRES: dict[str, dict[str, tuple[str, ...]]] = {
    "test": {"M": ("Marco", "travis", "david", "Storm"), "F": ("Andrea", "anika", "grandma", "Alicia")},
    "dev": {"M": ("sandro", "AnxiousAndy"), "F": ("shelby", "belinda")},
    "train": {"M": ("m2", "m3", "m5", "m6", "m7", "m8", "klatt", "klatt3", "klatt4", "Michael", "iven", "Gene",
                    "benjamin", "rob", "RicishayMax", "Mario", "pedro", "quincy", "victor", "norbert", "Denis",
                    "antonio", "Jacky", "paul"),
              "F": ("f1", "f2", "f3", "f4", "f5", "aunty", "steph", "Annie", "linda")},
}
# pitch (-p) ranges by gender, speed (-s, wpm): a grid of 6 pitch x 4 speed cells; the held-out
# cells (dev/test) are interleaved with the training ones
PITCH_RANGE = {"M": (10, 70), "F": (30, 90)}
SPEED_RANGE = (130, 202)
PITCH_BANDS, SPEED_BANDS = 6, 4
LEVEL_DB = (-30.0, -23.0)  # speaker RMS level on the speech; espeak's crest factor is <= ~21 dB
LEVEL_JITTER_DB = 0.5
PEAK_LIMIT = 0.95
LEAD_SILENCE_S = (0.1, 0.45)
TRAIL_SILENCE_S = (0.1, 0.3)
BUNDLED_FRACTION = {"train": 0.15, "dev": 0.3, "test": 0.4}
MEAN_UTT_SECONDS = 5.0  # used to turn --hours into a number of utterances


@dataclass(frozen=True)
class CorpusSize:
    """How many speakers and utterances each subset gets (dev speakers are unseen in training)."""
    train_speakers: int
    test_speakers: int
    dev_speakers: int
    train_utts: int  # per training speaker
    dev_utts: int  # per dev speaker
    test_utts: int  # per test speaker
    train_chapters: int = 2


SIZES: dict[str, CorpusSize] = {
    "tiny": CorpusSize(train_speakers=4, test_speakers=2, dev_speakers=2, train_utts=6, dev_utts=3, test_utts=4),
    "default": CorpusSize(train_speakers=40, test_speakers=8, dev_speakers=8, train_utts=46, dev_utts=8,
                          test_utts=12, train_chapters=3),
}


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an espeak voice with its settings."""
    id: str
    voice: str  # the accent (espeak language voice)
    variant: str  # the timbre
    gender: str  # "M" or "F"
    pitch: int
    speed: int
    gap: int
    level_db: float
    split: str = "train"
    cell: tuple[int, int] = (0, 0)  # (pitch band, speed band)

    def espeak_args(self) -> list[str]:
        return ["-v", self.espeak_voice(), "-p", str(self.pitch), "-s", str(self.speed), "-g", str(self.gap)]

    def espeak_voice(self) -> str:
        return f"{ESPEAK_VOICE_NAME.get(self.voice, self.voice)}+{self.variant}"

    def describe(self) -> str:
        return f"{self.voice}+{self.variant} p{self.pitch} s{self.speed} g{self.gap}"


@dataclass(frozen=True)
class UttJob:
    """One utterance to synthesize."""
    subset: str
    speaker: Speaker
    chapter: str
    utt_id: str
    text_orig: str
    text_norm: str
    lead_s: float = 0.0
    trail_s: float = 0.0
    level_db: float = -25.0

    def wav_path(self, root: Path) -> Path:
        return root / "LibriTTS" / self.subset / self.speaker.id / self.chapter / f"{self.utt_id}.wav"


@dataclass
class CorpusStats:
    """What was generated."""
    utterances: int
    speakers: int
    hours: float
    megabytes: float
    seconds: float
    synthesized: int  # utterances synthesized in this run (the others were already there)
    limited: int = 0  # utterances (of this run) whose level was lowered to keep the peak under PEAK_LIMIT


def is_heldout_cell(cell: tuple[int, int]) -> bool:
    """Held-out (dev/test) cells of the pitch x speed grid: 6 of 24, each surrounded by training cells."""
    return (cell[0] + 2 * cell[1]) % 4 == 1


def cell_of(gender: str, pitch: int, speed: int) -> tuple[int, int]:
    lo, hi = PITCH_RANGE[gender]
    pb = min(PITCH_BANDS - 1, max(0, (pitch - lo) * PITCH_BANDS // (hi - lo)))
    sb = min(SPEED_BANDS - 1, max(0, (speed - SPEED_RANGE[0]) * SPEED_BANDS // (SPEED_RANGE[1] - SPEED_RANGE[0])))
    return pb, sb


def _in_cell(gender: str, cell: tuple[int, int], rng: random.Random) -> tuple[int, int]:
    """A (pitch, speed) inside ``cell``, away from its edges (so neighbours stay apart)."""
    lo, hi = PITCH_RANGE[gender]
    pw = (hi - lo) / PITCH_BANDS
    sw = (SPEED_RANGE[1] - SPEED_RANGE[0]) / SPEED_BANDS
    p0, s0 = lo + cell[0] * pw, SPEED_RANGE[0] + cell[1] * sw
    pitch = rng.randint(math.ceil(p0 + 2), math.floor(p0 + pw - 2))
    speed = rng.randint(math.ceil(s0 + 3), math.floor(s0 + sw - 3))
    assert cell_of(gender, pitch, speed) == cell
    return pitch, speed


def make_speakers(size: CorpusSize, rng: random.Random, accents: AccentPolicy = "single") -> list[Speaker]:
    """Training, dev and test speakers (in that order) from disjoint timbres and pitch/speed cells."""
    cells = [(p, s) for p in range(PITCH_BANDS) for s in range(SPEED_BANDS)]
    heldout_cells = [c for c in cells if is_heldout_cell(c)]
    train_cells = [c for c in cells if not is_heldout_cell(c)]
    speakers: list[Speaker] = []
    for split, n in (("train", size.train_speakers), ("dev", size.dev_speakers), ("test", size.test_speakers)):
        pools = {g: list(TIMBRES[split][g]) for g in ("M", "F")}
        cell_pools = {g: list(train_cells if split == "train" else heldout_cells) for g in ("M", "F")}
        for g in ("M", "F"):
            rng.shuffle(pools[g])
            rng.shuffle(cell_pools[g])
        for i in range(n):
            g = "F" if i % 2 else "M"
            k = i // 2
            variant = pools[g][k % len(pools[g])]
            cell = cell_pools[g][k % len(cell_pools[g])]
            pitch, speed = _in_cell(g, cell, rng)
            idx = len(speakers)
            voice = ACCENTS[rng.randrange(len(ACCENTS))] if accents == "per-speaker" else DEFAULT_ACCENT
            speakers.append(Speaker(id=str(100 + 3 * idx), voice=voice, variant=variant, gender=g, pitch=pitch,
                                    speed=speed, gap=rng.randint(0, 2),
                                    level_db=round(rng.uniform(*LEVEL_DB), 1), split=split, cell=cell))
    return speakers


def plan_corpus(size: CorpusSize, seed: int, accents: AccentPolicy = "single") -> tuple[list[Speaker], list[UttJob]]:
    """Decide everything (speakers, chapters, sentences, ids, silences, levels) from the seed."""
    rng = random.Random(seed)
    speakers = make_speakers(size, rng, accents)
    plan: list[tuple[str, Speaker, int, int]] = []  # subset, speaker, n_utts, n_chapters
    per_split = {"train": (size.train_utts, size.train_chapters), "dev": (size.dev_utts, 1),
                 "test": (size.test_utts, 1)}
    for subset in SUBSETS:
        split = SPLIT_OF_SUBSET[subset]
        n_utts, n_chap = per_split[split]
        plan += [(subset, s, n_utts, n_chap) for s in speakers if s.split == split]
    sentences = {split: iter(make_sentences(sum(p[2] for p in plan if SPLIT_OF_SUBSET[p[0]] == split),
                                            seed + k, BUNDLED_FRACTION[split], split=split))
                 for k, split in enumerate(("train", "dev", "test"))}
    jobs: list[UttJob] = []
    next_chapter = 1000
    for subset, spk, n_utts, n_chap in plan:
        per_chapter = [n_utts // n_chap + (1 if c < n_utts % n_chap else 0) for c in range(n_chap)]
        for count in per_chapter:
            chapter = str(next_chapter)
            next_chapter += 7
            para, sent = 0, 0
            for _ in range(count):
                orig, norm = next(sentences[SPLIT_OF_SUBSET[subset]])
                jobs.append(UttJob(subset, spk, chapter, f"{spk.id}_{chapter}_{para:06d}_{sent:06d}", orig, norm,
                                   lead_s=round(rng.uniform(*LEAD_SILENCE_S), 3),
                                   trail_s=round(rng.uniform(*TRAIL_SILENCE_S), 3),
                                   level_db=round(spk.level_db + rng.uniform(-LEVEL_JITTER_DB, LEVEL_JITTER_DB), 2)))
                sent += 1
                if rng.random() < 0.35:
                    para, sent = para + 1, 0
    return speakers, jobs


# ----------------------------------------------------------------------------- espeak-ng
def espeak_ng_version() -> str:
    """``espeak-ng --version``'s version number (e.g. ``"1.51"``)."""
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False).stdout
    parts = out.split()
    return parts[parts.index("text-to-speech:") + 1] if "text-to-speech:" in parts else out.strip()


def _espeak(args: list[str], text: str) -> bytes:
    cmd = ["espeak-ng", *args, "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        raise RuntimeError(f"espeak-ng failed ({' '.join(cmd)}): {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


_PROBE = "A quick test of this voice, with a few words."


def check_voices(voices: list[str]) -> None:
    """Fail if espeak-ng silently substitutes a voice (``en-us+bogus`` sounds exactly like ``en-us``:
    the variant is missing) or two different voices give identical audio."""
    base: dict[str, bytes] = {}
    audio: dict[bytes, str] = {}
    bad: list[str] = []
    for v in sorted(set(voices)):
        lang, _, variant = v.partition("+")
        if lang not in base:
            base[lang] = _espeak(["-v", lang], _PROBE)
        wav = _espeak(["-v", v], _PROBE)
        if variant and wav == base[lang]:
            bad.append(f"{v} sounds exactly like {lang} (variant {variant!r} missing: espeak-ng substitutes it)")
        elif wav in audio:
            bad.append(f"{v} sounds exactly like {audio[wav]}")
        audio.setdefault(wav, v)
    if bad:
        raise RuntimeError("espeak-ng voice problems (speakers would not be distinct): " + "; ".join(bad))


def _trim(wav: np.ndarray, sr: int, threshold_db: float = -45.0, pad_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing silence, keeping ``pad_s`` seconds (onsets and decays) on each side."""
    frame = int(0.01 * sr)
    n = len(wav) // frame
    if n == 0:
        return wav
    energy = 20 * np.log10(np.sqrt(np.mean(wav[: n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-9)
    voiced = np.flatnonzero(energy > threshold_db + 20 * np.log10(np.max(np.abs(wav)) + 1e-9))
    if voiced.size == 0:
        return wav
    pad = int(pad_s * sr)
    return wav[max(0, voiced[0] * frame - pad): min(len(wav), (voiced[-1] + 1) * frame + pad)]


def synthesize(text: str, speaker: Speaker, level_db: float | None = None, lead_s: float = 0.0,
               trail_s: float = 0.0) -> tuple[np.ndarray, bool]:
    """Speak ``text`` with ``speaker``: float32 mono 24 kHz audio and whether the level had to be lowered.

    The speech is trimmed, brought to ``level_db`` dBFS RMS (measured on the speech, not the padding) and
    padded with ``lead_s`` / ``trail_s`` seconds of silence. The gain is lowered, never clipped, if the
    peak would exceed :data:`PEAK_LIMIT` (``True`` is returned then).
    """
    wav, sr = sf.read(io.BytesIO(_espeak(speaker.espeak_args(), text)), dtype="float32")
    wav = resample(_trim(wav, sr), sr, SAMPLE_RATE)
    level = rms(wav)
    limited = False
    if level > 0:
        gain = 10.0 ** ((speaker.level_db if level_db is None else level_db) / 20.0) / level
        peak = float(np.max(np.abs(wav))) * gain
        if peak > PEAK_LIMIT:
            gain *= PEAK_LIMIT / peak
            limited = True
        wav = wav * gain
    pad = lambda s: np.zeros(int(round(s * SAMPLE_RATE)), np.float32)
    return np.concatenate([pad(lead_s), wav.astype(np.float32), pad(trail_s)]), limited


def _run_job(job: UttJob, root: Path) -> tuple[float, bool, bool]:
    wav_path = job.wav_path(root)
    txt_norm = wav_path.with_name(job.utt_id + ".normalized.txt")
    txt_orig = wav_path.with_name(job.utt_id + ".original.txt")
    if wav_path.exists() and txt_norm.exists() and txt_orig.exists():
        frames, sr, _ = audio_info(wav_path)
        return frames / sr, False, False
    atomic_write_text(txt_norm, job.text_norm)
    atomic_write_text(txt_orig, job.text_orig)
    wav, limited = synthesize(job.text_norm, job.speaker, job.level_db, job.lead_s, job.trail_s)
    save_audio(wav_path, wav, SAMPLE_RATE)  # last: its existence marks the utterance complete
    return len(wav) / SAMPLE_RATE, True, limited


def _write_indexes(root: Path, speakers: list[Speaker], jobs: list[UttJob], accents: AccentPolicy) -> None:
    by_chapter: dict[tuple[str, str, str], list[UttJob]] = {}
    for j in jobs:
        by_chapter.setdefault((j.subset, j.speaker.id, j.chapter), []).append(j)
    for (subset, spk, chapter), js in by_chapter.items():
        lines = "".join(f"{j.utt_id}\t{j.text_orig}\t{j.text_norm}\n" for j in js)
        atomic_write_text(root / "LibriTTS" / subset / spk / chapter / f"{spk}_{chapter}.trans.tsv", lines)
    subset_of = {j.speaker.id: j.subset for j in jobs}
    rows = ["READER\tGENDER\tSUBSET\tNAME"]
    rows += [f"{s.id}\t{s.gender}\t{subset_of[s.id]}\t{s.describe()}" for s in speakers if s.id in subset_of]
    atomic_write_text(root / "LibriTTS" / "speakers.tsv", "\n".join(rows) + "\n")
    if accents == "per-speaker":
        atomic_write_text(root / "LibriTTS" / ACCENTS_FILE,
                          "".join(f"{s.id}\t{s.voice}\n" for s in speakers if s.id in subset_of))
    for subset in SUBSETS:
        atomic_write_text(root / "LibriTTS" / subset / SENTINEL, "mini_corpus\n")


def corpus_settings(size: CorpusSize, seed: int, speakers: list[Speaker], accents: AccentPolicy) -> dict:
    """Everything that defines the corpus (written to ``mini_corpus.json``; a resume must match it)."""
    return {
        "corpus_version": CORPUS_VERSION, "seed": seed, "size": asdict(size), "sample_rate": SAMPLE_RATE,
        "espeak_ng_version": espeak_ng_version(), "accent_policy": accents,
        "accents": sorted({s.voice for s in speakers}),
        "timbres": {split: {g: list(v) for g, v in t.items()} for split, t in TIMBRES.items()},
        "grid": {"pitch_range": PITCH_RANGE, "speed_range": list(SPEED_RANGE), "pitch_bands": PITCH_BANDS,
                 "speed_bands": SPEED_BANDS, "heldout_cells": [[p, s] for p in range(PITCH_BANDS)
                                                                for s in range(SPEED_BANDS) if is_heldout_cell((p, s))]},
        "audio": {"level_db": list(LEVEL_DB), "level_jitter_db": LEVEL_JITTER_DB, "peak_limit": PEAK_LIMIT,
                  "lead_silence_s": list(LEAD_SILENCE_S), "trail_silence_s": list(TRAIL_SILENCE_S)},
        "speakers": [{**asdict(s), "cell": list(s.cell)} for s in speakers],
        "sentences": {"bundled_fraction": BUNDLED_FRACTION,
                      "handwritten_dev": list(handwritten("dev")), "handwritten_test": list(handwritten("test")),
                      "dev_only_words": heldout_words("dev"), "test_only_words": heldout_words("test")},
    }


def build_corpus(root: str | os.PathLike, size: CorpusSize, seed: int = 0, jobs: int = 4,
                 accents: AccentPolicy = "single") -> CorpusStats:
    """Synthesize the whole corpus under ``<root>/LibriTTS`` (resumable); return its statistics."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng / brew install espeak-ng)")
    root = Path(root)
    t0 = time.perf_counter()
    speakers, plan = plan_corpus(size, seed, accents)
    used = {s.id for s in speakers} & {j.speaker.id for j in plan}
    check_voices([s.espeak_voice() for s in speakers if s.id in used])
    config = json.loads(json.dumps(corpus_settings(size, seed, speakers, accents)))  # tuples -> lists, as on disk
    config_file = root / "LibriTTS" / "mini_corpus.json"
    if config_file.exists() and json.loads(config_file.read_text(encoding="utf-8")) != config:
        raise RuntimeError(f"{config_file} holds a corpus made with other settings (seed/size/version/espeak-ng); "
                           f"resuming into it would mix two corpora: use another --root or delete {root / 'LibriTTS'}")
    atomic_write_text(config_file, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    total_s, new, limited = 0.0, 0, 0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_run_job, j, root): j for j in plan}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="synthesize", unit="utt", disable=None):
            try:
                dur, made, lim = fut.result()
            except Exception as e:
                raise RuntimeError(f"utterance {futures[fut].utt_id}: {e}") from e
            total_s += dur
            new += made
            limited += lim
    _write_indexes(root, speakers, plan, accents)
    mb = sum(j.wav_path(root).stat().st_size for j in plan) / 1e6
    stats = CorpusStats(len(plan), len({j.speaker.id for j in plan}), total_s / 3600, mb,
                        time.perf_counter() - t0, new, limited)
    log.info("mini corpus in %s: %d utterances, %d speakers, %.2f h, %.0f MB, %.1f s (%d synthesized now, "
             "%d with a lowered level)", root / "LibriTTS", stats.utterances, stats.speakers, stats.hours,
             stats.megabytes, stats.seconds, new, limited)
    return stats


def size_from_args(name: str, speakers: int | None, hours: float | None) -> CorpusSize:
    """A named size, optionally overridden by a total speaker count and/or training hours."""
    size = SIZES[name]
    if speakers is None and hours is None:
        return size
    n = speakers if speakers is not None else size.train_speakers + size.test_speakers + size.dev_speakers
    if n < 3:
        raise ValueError("--speakers must be at least 3 (train, dev and test speakers are disjoint)")
    n_test = max(1, n // 7)
    n_dev = max(1, n // 7)
    n_train = n - n_test - n_dev
    train_utts = size.train_utts if hours is None else max(1, math.ceil(hours * 3600 / MEAN_UTT_SECONDS / n_train))
    return CorpusSize(n_train, n_test, n_dev, train_utts, size.dev_utts, size.test_utts, size.train_chapters)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="output directory (receives LibriTTS/)")
    p.add_argument("--size", choices=sorted(SIZES), default="default")
    p.add_argument("--speakers", type=int, default=None, help="total speakers (overrides --size)")
    p.add_argument("--hours", type=float, default=None, help="approximate training hours (overrides --size)")
    p.add_argument("--accents", choices=["single", "per-speaker"], default="single",
                   help="one accent (en-us) for all speakers, or one of 8 English accents per speaker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    build_corpus(args.root, size_from_args(args.size, args.speakers, args.hours), args.seed, args.jobs, args.accents)


if __name__ == "__main__":
    main()
