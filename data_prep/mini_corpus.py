"""A multi-speaker English corpus synthesized with espeak-ng, in LibriTTS's exact layout.

    python -m data_prep.mini_corpus --root data/mini --size default --jobs 4

Written under ``<root>/LibriTTS/`` at 24 kHz, 16-bit mono (espeak's 22,050 Hz resampled with soxr)::

    <subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para>_<sent>.wav
                                 ... .normalized.txt  .original.txt
    <subset>/<speaker>/<chapter>/<speaker>_<chapter>.trans.tsv   (id, original, normalized)
    <subset>/.ndvq_complete    speakers.tsv    mini_corpus.json (the settings used)

Subsets: ``train-clean-100``, ``dev-clean``, ``test-clean``, built for zero-shot evaluation:

* voices (``--size default``): 460 training voices designed by the project (formants, pitch base and
  range, tone, breath, flutter, roughness: data_prep/mini_design.py), written as espeak-ng variant files
  into ``<root>/espeak-ng-voices/`` (an English copy of espeak-ng's data, read with ``--path``; nothing
  is written to system folders), 4 utterances each: the same hours as the stock corpus, 11x the voices.
  Dev and test voices come from cells of the design space (vocal-tract scale x pitch base) that no
  training voice uses;
* voices (``--size stock``): every speaker is an espeak-ng *timbre* (a variant, +m2, +f3, +Annie, ...) at a pitch (-p) and
  speed (-s). The timbres of the test speakers, those of the dev speakers (an unseen-speaker validation
  split) and those of training are disjoint (:data:`data_prep.mini_plan.TIMBRES`: variants grouped by a
  speaker encoder's similarity, a group never split across subsets), and dev/test speakers sit in
  pitch/speed cells no training speaker uses (:func:`data_prep.mini_plan.cell_of`; the grid interleaves,
  so held-out voices are inside the training range, not beyond it). Variants espeak-ng would silently
  replace by its default voice, or two variants giving the same audio, stop the build
  (:func:`data_prep.mini_voice.check_voices`);
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

The plan (speakers, texts, levels) is data_prep/mini_plan.py, the espeak-ng voices data_prep/mini_voice.py.
Deterministic for a seed (every random choice is made up front from ``random.Random(seed)``).
Resumable: an utterance whose wav exists is kept (wav files are written last and atomically).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from core.io import atomic_write_text
from core.logs import setup_logging
from data_prep.audio import audio_info, save_audio
from data_prep.mini_plan import (ACCENTS_FILE, BUNDLED_FRACTION, CORPUS_VERSION, LEAD_SILENCE_S, LEVEL_DB,
                                 LEVEL_JITTER_DB, MEAN_UTT_SECONDS, PEAK_LIMIT, PITCH_BANDS, PITCH_RANGE, SAMPLE_RATE,
                                 SENTINEL, SIZES, SPEED_BANDS, SPEED_RANGE, SUBSETS, TIMBRES, TRAIL_SILENCE_S,
                                 AccentPolicy, CorpusSize, Speaker, UttJob, is_heldout_cell, plan_corpus)
from data_prep.mini_design import BANDS, CELL_MARGIN, PITCH_HZ_RANGE, TRACT_RANGE, design_cells
from data_prep.mini_voice import check_designed_voices, check_voices, espeak_ng_version, synthesize, write_voice_folder
from data_prep.sentences import handwritten, heldout_words

log = logging.getLogger(__name__)
VOICE_DIR = "espeak-ng-voices"      # <root>/espeak-ng-voices: the designed voices' espeak-ng data folder


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
        "design_grid": {"tract_range": list(TRACT_RANGE), "pitch_hz_range": list(PITCH_HZ_RANGE), "bands": BANDS,
                        "cell_margin": CELL_MARGIN, "heldout_cells": [list(c) for c in design_cells(heldout=True)]},
        # the voice folder's place is not a setting (a moved corpus is the same corpus)
        "speakers": [{**{k: v for k, v in asdict(s).items() if k != "voice_dir"}, "cell": list(s.cell)} for s in speakers],
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
    voice_dir = (root / VOICE_DIR).resolve()
    speakers, plan = plan_corpus(size, seed, accents, voice_dir=str(voice_dir))
    used = {s.id for s in speakers} & {j.speaker.id for j in plan}
    if size.voices == "designed":
        for folder in sorted({s.voice_dir for s in speakers if s.id in used}):
            write_voice_folder(Path(folder), {s.variant: s.variant_file() for s in speakers
                                              if s.id in used and s.voice_dir == folder})
        check_designed_voices([s for s in speakers if s.id in used])
    else:
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


def replan(corpus_json: str | os.PathLike) -> tuple[list[Speaker], list[UttJob]]:
    """The plan of an existing corpus from its ``<root>/LibriTTS/mini_corpus.json``, with the designed voices'
    espeak-ng folder resolved where that corpus keeps it (``<root>/espeak-ng-voices``)."""
    path = Path(corpus_json)
    meta = json.loads(path.read_text(encoding="utf-8"))
    size = CorpusSize(**meta["size"])
    return plan_corpus(size, int(meta["seed"]), meta.get("accent_policy", "single"),
                       voice_dir=str((path.parent.parent / VOICE_DIR).resolve()))


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
    return CorpusSize(n_train, n_test, n_dev, train_utts, size.dev_utts, size.test_utts, size.train_chapters,
                      size.voices)


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
