"""The mini corpus's plan (data_prep/mini_corpus.py): its speakers and every utterance's text, level and
silences, deterministic for a seed (every random choice is made up front from ``random.Random(seed)``).

Speakers (CorpusSize.voices): ``designed`` (default): hundreds of espeak-ng variants the project writes
itself (data_prep/mini_design.py), held-out ones in cells of a tract x pitch grid no training voice uses;
``stock``: espeak-ng's own variants at pitch/speed cells, held-out timbres and cells disjoint from training."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from data_prep.mini_design import (FEMALE_FROM_HZ, VARIANT_PREFIX, design_cells, sample_design, variant_text)
from data_prep.sentences import make_sentences

CORPUS_VERSION = "2"
SAMPLE_RATE = 24_000
ESPEAK_RATE = 22_050
SUBSETS: tuple[str, str, str] = ("train-clean-100", "dev-clean", "test-clean")
SPLIT_OF_SUBSET = dict(zip(SUBSETS, ("train", "dev", "test")))
SENTINEL = ".ndvq_complete"
ACCENTS_FILE = "accents.tsv"
AccentPolicy = Literal["single", "per-speaker"]
VoicePolicy = Literal["designed", "stock"]
# espeak-ng 1.51 lists at most 349 voices of a data folder (N_VOICES_LIST) and then finds none: the
# designed voices are spread over folders of this many (<voice_dir>/0, /1, ...)
VOICES_PER_FOLDER = 250
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
    # "stock" when not said: mini_corpus.json files written before designed voices existed mean stock
    voices: VoicePolicy = "stock"


# "default": 460 designed training voices x 4 utterances, the same 1,840 training utterances (hours) as
# "stock", the earlier default of 40 stock espeak-ng variants x 46.
SIZES: dict[str, CorpusSize] = {
    "tiny": CorpusSize(train_speakers=4, test_speakers=2, dev_speakers=2, train_utts=6, dev_utts=3, test_utts=4,
                       voices="designed"),
    "default": CorpusSize(train_speakers=460, test_speakers=8, dev_speakers=8, train_utts=4, dev_utts=8,
                          test_utts=12, train_chapters=1, voices="designed"),
    "stock": CorpusSize(train_speakers=40, test_speakers=8, dev_speakers=8, train_utts=46, dev_utts=8,
                        test_utts=12, train_chapters=3, voices="stock"),
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
    cell: tuple[int, int] = (0, 0)  # stock: (pitch band, speed band); designed: (tract band, pitch band)
    design: str = ""  # designed voices: the variant file's settings (data_prep/mini_design.py)
    tract: float = 0.0  # designed voices: formant-frequency scale and pitch base (Hz)
    pitch_hz: float = 0.0
    voice_dir: str = ""  # designed voices: the espeak-ng data folder holding the variant (not a setting)

    def espeak_args(self) -> list[str]:
        if self.design and not self.voice_dir:
            raise ValueError(f"speaker {self.id}: a designed voice needs its espeak-ng folder (plan_corpus voice_dir)")
        path = ["--path=" + self.voice_dir] if self.design else []
        return [*path, "-v", self.espeak_voice(), "-p", str(self.pitch), "-s", str(self.speed), "-g", str(self.gap)]

    def variant_file(self) -> str:
        """The espeak-ng variant file of a designed voice."""
        return variant_text(self.variant, self.gender, self.design)

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


def make_designed_speakers(size: CorpusSize, rng: random.Random, accents: AccentPolicy = "single",
                           voice_dir: str = "") -> list[Speaker]:
    """Training, dev and test speakers (in that order) with designed voices: training ones in the training
    cells of the tract x pitch grid, dev and test ones in the held-out cells (data_prep/mini_design.py)."""
    speakers: list[Speaker] = []
    for split, n in (("train", size.train_speakers), ("dev", size.dev_speakers), ("test", size.test_speakers)):
        cells = design_cells(heldout=split != "train")
        rng.shuffle(cells)
        for i in range(n):
            cell = cells[i % len(cells)]
            tract, pitch_hz, settings = sample_design(cell, rng)
            idx = len(speakers)
            voice = ACCENTS[rng.randrange(len(ACCENTS))] if accents == "per-speaker" else DEFAULT_ACCENT
            speakers.append(Speaker(id=str(100 + 3 * idx), voice=voice, variant=f"{VARIANT_PREFIX}{idx:04d}",
                                    gender="F" if pitch_hz >= FEMALE_FROM_HZ else "M", pitch=50,
                                    speed=rng.randint(*SPEED_RANGE), gap=rng.randint(0, 2),
                                    level_db=round(rng.uniform(*LEVEL_DB), 1), split=split, cell=cell,
                                    design=settings, tract=tract, pitch_hz=pitch_hz,
                                    voice_dir=f"{voice_dir}/{idx // VOICES_PER_FOLDER}" if voice_dir else ""))
    return speakers


def plan_corpus(size: CorpusSize, seed: int, accents: AccentPolicy = "single",
                voice_dir: str = "") -> tuple[list[Speaker], list[UttJob]]:
    """Decide everything (speakers, chapters, sentences, ids, silences, levels) from the seed. voice_dir:
    the parent of the designed voices' espeak-ng data folders (data_prep.mini_voice.write_voice_folder)."""
    rng = random.Random(seed)
    speakers = (make_designed_speakers(size, rng, accents, voice_dir) if size.voices == "designed"
                else make_speakers(size, rng, accents))
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
