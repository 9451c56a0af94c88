"""A multi-speaker English corpus synthesized with espeak-ng, in LibriTTS's exact layout.

    python -m data_prep.mini_corpus --root data/mini --size default --jobs 4

Written under ``<root>/LibriTTS/`` at 24 kHz, 16-bit mono (espeak's 22,050 Hz resampled with soxr)::

    <subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para>_<sent>.wav
                                 ... .normalized.txt  .original.txt
    <subset>/<speaker>/<chapter>/<speaker>_<chapter>.trans.tsv   (id, original, normalized)
    <subset>/.ndvq_complete    speakers.tsv    mini_corpus.json (the settings used)

Subsets: ``train-clean-100``, ``dev-clean``, ``test-clean``.
* test speakers never occur in training (zero-shot TTS evaluation needs unseen voices);
* dev speakers are a subset of the training speakers, with their own chapters and sentences
  (validation of seen voices on unseen text).

Speakers combine an English voice (en-us, en-gb, en-gb-scotland, en-gb-x-rp, en-029, en-us-nyc, ...),
a variant (+m1..+m8, +f1..+f5, +klatt.., ...), a pitch (-p), a speed (-s, words per minute), a word gap
(-g) and a loudness; pitch and speed are spread so that speakers are distinct. Text comes from
:mod:`data_prep.sentences`; espeak reads the normalized text.

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

import numpy as np
import soundfile as sf
from tqdm import tqdm

from data_prep.audio import audio_info, normalize_loudness, resample, save_audio
from data_prep.fileio import atomic_write_text, setup_logging
from data_prep.sentences import make_sentences

log = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
ESPEAK_RATE = 22_050
SUBSETS: tuple[str, str, str] = ("train-clean-100", "dev-clean", "test-clean")
SENTINEL = ".ndvq_complete"
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "klatt", "klatt2", "klatt3", "Michael")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "Annie")
MEAN_UTT_SECONDS = 5.0  # used to turn --hours into a number of utterances


@dataclass(frozen=True)
class CorpusSize:
    """How many speakers and utterances each subset gets."""
    train_speakers: int
    test_speakers: int
    dev_speakers: int  # taken from the training speakers
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
    voice: str
    variant: str
    gender: str  # "M" or "F"
    pitch: int
    speed: int
    gap: int
    level_db: float

    def espeak_args(self) -> list[str]:
        return ["-v", f"{self.voice}+{self.variant}", "-p", str(self.pitch), "-s", str(self.speed), "-g", str(self.gap)]

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


def make_speakers(n: int, rng: random.Random) -> list[Speaker]:
    """``n`` distinct speakers; voices cycle, variants alternate gender, pitch/speed spread evenly."""
    combos = [(v, var, "M") for v in VOICES for var in MALE_VARIANTS] + \
             [(v, var, "F") for v in VOICES for var in FEMALE_VARIANTS]
    males = [c for c in combos if c[2] == "M"]
    females = [c for c in combos if c[2] == "F"]
    rng.shuffle(males)
    rng.shuffle(females)
    speakers = []
    pitch_steps = rng.sample(range(n), n)  # a permutation: evenly spread pitches/speeds
    speed_steps = rng.sample(range(n), n)
    for i in range(n):
        pool = females if i % 2 else males
        voice, variant, gender = pool[(i // 2) % len(pool)]
        lo, hi = (40, 90) if gender == "F" else (15, 65)
        pitch = lo + round((hi - lo) * (pitch_steps[i] + 0.5) / n)
        speed = 135 + round(60 * (speed_steps[i] + 0.5) / n)
        speakers.append(Speaker(id=str(100 + 3 * i), voice=voice, variant=variant, gender=gender, pitch=pitch,
                                speed=speed, gap=rng.randint(0, 2), level_db=round(rng.uniform(-24.0, -17.0), 1)))
    return speakers


def plan_corpus(size: CorpusSize, seed: int) -> tuple[list[Speaker], list[UttJob]]:
    """Decide everything (speakers, chapters, sentences, ids) from the seed; nothing is synthesized."""
    rng = random.Random(seed)
    speakers = make_speakers(size.train_speakers + size.test_speakers, rng)
    train, test = speakers[: size.train_speakers], speakers[size.train_speakers:]
    dev = rng.sample(train, min(size.dev_speakers, len(train)))
    plan: list[tuple[str, Speaker, int, int]] = []  # subset, speaker, n_utts, n_chapters
    plan += [(SUBSETS[0], s, size.train_utts, size.train_chapters) for s in train]
    plan += [(SUBSETS[1], s, size.dev_utts, 1) for s in sorted(dev, key=lambda s: int(s.id))]
    plan += [(SUBSETS[2], s, size.test_utts, 1) for s in test]
    sentences = iter(make_sentences(sum(p[2] for p in plan), seed))
    jobs: list[UttJob] = []
    next_chapter = 1000
    for subset, spk, n_utts, n_chap in plan:
        per_chapter = [n_utts // n_chap + (1 if c < n_utts % n_chap else 0) for c in range(n_chap)]
        for count in per_chapter:
            chapter = str(next_chapter)
            next_chapter += 7
            para, sent = 0, 0
            for _ in range(count):
                orig, norm = next(sentences)
                jobs.append(UttJob(subset, spk, chapter, f"{spk.id}_{chapter}_{para:06d}_{sent:06d}", orig, norm))
                sent += 1
                if rng.random() < 0.35:
                    para, sent = para + 1, 0
    return speakers, jobs


def _trim(wav: np.ndarray, sr: int, threshold_db: float = -45.0, pad_s: float = 0.12) -> np.ndarray:
    """Cut leading/trailing silence, keeping ``pad_s`` seconds on each side."""
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


def synthesize(text: str, speaker: Speaker) -> np.ndarray:
    """Speak ``text`` with ``speaker``; return float32 mono audio at 24 kHz."""
    cmd = ["espeak-ng", *speaker.espeak_args(), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        raise RuntimeError(f"espeak-ng failed ({' '.join(cmd)}): {proc.stderr.decode(errors='replace').strip()}")
    wav, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    wav = _trim(wav, sr)
    wav = resample(wav, sr, SAMPLE_RATE)
    return normalize_loudness(wav, speaker.level_db)


def _run_job(job: UttJob, root: Path) -> tuple[float, bool]:
    wav_path = job.wav_path(root)
    txt_norm = wav_path.with_name(job.utt_id + ".normalized.txt")
    txt_orig = wav_path.with_name(job.utt_id + ".original.txt")
    if wav_path.exists() and txt_norm.exists() and txt_orig.exists():
        frames, sr, _ = audio_info(wav_path)
        return frames / sr, False
    atomic_write_text(txt_norm, job.text_norm)
    atomic_write_text(txt_orig, job.text_orig)
    wav = synthesize(job.text_norm, job.speaker)
    save_audio(wav_path, wav, SAMPLE_RATE)  # last: its existence marks the utterance complete
    return len(wav) / SAMPLE_RATE, True


def _write_indexes(root: Path, speakers: list[Speaker], jobs: list[UttJob]) -> None:
    by_chapter: dict[tuple[str, str, str], list[UttJob]] = {}
    for j in jobs:
        by_chapter.setdefault((j.subset, j.speaker.id, j.chapter), []).append(j)
    for (subset, spk, chapter), js in by_chapter.items():
        lines = "".join(f"{j.utt_id}\t{j.text_orig}\t{j.text_norm}\n" for j in js)
        atomic_write_text(root / "LibriTTS" / subset / spk / chapter / f"{spk}_{chapter}.trans.tsv", lines)
    subset_of: dict[str, str] = {}
    for j in jobs:
        subset_of.setdefault(j.speaker.id, j.subset)  # train first: dev speakers are train speakers
    rows = ["READER\tGENDER\tSUBSET\tNAME"]
    rows += [f"{s.id}\t{s.gender}\t{subset_of[s.id]}\t{s.describe()}" for s in speakers if s.id in subset_of]
    atomic_write_text(root / "LibriTTS" / "speakers.tsv", "\n".join(rows) + "\n")
    for subset in SUBSETS:
        atomic_write_text(root / "LibriTTS" / subset / SENTINEL, "mini_corpus\n")


def build_corpus(root: str | os.PathLike, size: CorpusSize, seed: int = 0, jobs: int = 4) -> CorpusStats:
    """Synthesize the whole corpus under ``<root>/LibriTTS`` (resumable); return its statistics."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng / brew install espeak-ng)")
    root = Path(root)
    t0 = time.perf_counter()
    speakers, plan = plan_corpus(size, seed)
    config = {"seed": seed, "size": asdict(size), "sample_rate": SAMPLE_RATE,
              "speakers": [asdict(s) for s in speakers]}
    config_file = root / "LibriTTS" / "mini_corpus.json"
    if config_file.exists() and json.loads(config_file.read_text(encoding="utf-8")) != config:
        raise RuntimeError(f"{config_file} holds a corpus made with other settings (seed/size); resuming "
                           f"into it would mix two corpora: use another --root or delete {root / 'LibriTTS'}")
    atomic_write_text(config_file, json.dumps(config, indent=2) + "\n")
    total_s, new = 0.0, 0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_run_job, j, root): j for j in plan}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="synthesize", unit="utt", disable=None):
            try:
                dur, made = fut.result()
            except Exception as e:
                raise RuntimeError(f"utterance {futures[fut].utt_id}: {e}") from e
            total_s += dur
            new += made
    _write_indexes(root, speakers, plan)
    mb = sum(j.wav_path(root).stat().st_size for j in plan) / 1e6
    stats = CorpusStats(len(plan), len({j.speaker.id for j in plan}), total_s / 3600, mb,
                        time.perf_counter() - t0, new)
    log.info("mini corpus in %s: %d utterances, %d speakers, %.2f h, %.0f MB, %.1f s (%d synthesized now)",
             root / "LibriTTS", stats.utterances, stats.speakers, stats.hours, stats.megabytes, stats.seconds, new)
    return stats


def size_from_args(name: str, speakers: int | None, hours: float | None) -> CorpusSize:
    """A named size, optionally overridden by a total speaker count and/or training hours."""
    size = SIZES[name]
    if speakers is None and hours is None:
        return size
    n = speakers if speakers is not None else size.train_speakers + size.test_speakers
    if n < 2:
        raise ValueError("--speakers must be at least 2 (train and test speakers are disjoint)")
    n_test = max(1, n // 6)
    n_train = n - n_test
    train_utts = size.train_utts if hours is None else max(1, math.ceil(hours * 3600 / MEAN_UTT_SECONDS / n_train))
    return CorpusSize(n_train, n_test, max(1, min(n_train, n // 6)), train_utts, size.dev_utts, size.test_utts,
                      size.train_chapters)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="output directory (receives LibriTTS/)")
    p.add_argument("--size", choices=sorted(SIZES), default="default")
    p.add_argument("--speakers", type=int, default=None, help="total speakers (overrides --size)")
    p.add_argument("--hours", type=float, default=None, help="approximate training hours (overrides --size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    build_corpus(args.root, size_from_args(args.size, args.speakers, args.hours), args.seed, args.jobs)


if __name__ == "__main__":
    main()
