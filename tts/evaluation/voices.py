"""Speaker-similarity reference rows of tts.evaluate beyond the recordings' floor and ceiling:

* codec-domain floor: each prompt against the codec resynthesis of the OTHER test speakers' recordings.
  Every output of one codec shares its artefacts, which a speaker encoder partly hears as a voice, so
  a TTS's SIM is read between this floor and the resynthesis row (the same speaker through the codec).
* nearest training voice: each prompt against its most similar training speaker (the mean cosine to a
  few of that speaker's recordings, the largest over speakers): what a model that maps every new voice
  to the nearest voice it was trained on would score.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.io import path_from_file, read_jsonl

log = logging.getLogger(__name__)

TRAIN_PER_SPEAKER = 3               # recordings embedded per training speaker
TRAIN_SECONDS = (2.0, 5.0)          # of this length (short ones: cheap to embed, long enough for a d-vector)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def cross_speaker_means(speakers: Sequence[Optional[str]], prompts: Sequence[Optional[np.ndarray]],
                        others: Sequence[Optional[np.ndarray]]) -> list[Optional[float]]:
    """Per item i: the mean cosine of prompt i to `others[j]` over the items j of another speaker (None
    when item i has no prompt embedding, no speaker label or no such j)."""
    out: list[Optional[float]] = []
    for i, (s, p) in enumerate(zip(speakers, prompts)):
        sims = [_cos(p, o) for j, o in enumerate(others)
                if p is not None and o is not None and s is not None and speakers[j] is not None and speakers[j] != s]
        out.append(float(np.mean(sims)) if sims else None)
    return out


def pick_training_utterances(manifest: str | Path, per_speaker: int = TRAIN_PER_SPEAKER,
                             exclude: Sequence[str] = ()) -> dict[str, list[str]]:
    """{training speaker: paths of its first `per_speaker` utterances (by id) of TRAIN_SECONDS}; speakers in
    `exclude` (the test speakers) are left out with a warning. A manifest without any is a ValueError."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"--train-manifest {manifest}: no such file")
    by_spk: dict[str, list[dict]] = defaultdict(list)
    lo, hi = TRAIN_SECONDS
    for r in read_jsonl(manifest):
        if r.get("speaker") is not None and r.get("path") and lo <= float(r.get("duration", 0)) <= hi:
            by_spk[str(r["speaker"])].append(r)
    shared = sorted(set(by_spk) & {str(s) for s in exclude})
    if shared:
        log.warning("--train-manifest: test speaker(s) %s also occur in training; left out of the nearest "
                    "training voice", " ".join(shared))
    hint: list = []
    picks = {s: [path_from_file(r["path"], manifest.parent, hint) for r in sorted(rows, key=lambda r: str(r["id"]))
                 [:per_speaker]] for s, rows in sorted(by_spk.items()) if s not in shared}
    if not picks:
        raise ValueError(f"--train-manifest {manifest}: no speaker with utterances of {lo:g}-{hi:g} s")
    return picks


def training_voices(picks: dict[str, list[str]], embed) -> dict[str, np.ndarray]:
    """{speaker: embeddings [n, D]} of the picked recordings; `embed(path)` -> [D] or None (unreadable)."""
    voices = {}
    for spk, paths in picks.items():
        embs = [e for e in (embed(p) for p in paths) if e is not None]
        if embs:
            voices[spk] = np.stack(embs)
    return voices


def nearest_voice(prompt: Optional[np.ndarray], voices: dict[str, np.ndarray]) -> tuple[Optional[float], Optional[str]]:
    """(the largest mean cosine of `prompt` to a training speaker's recordings, that speaker)."""
    if prompt is None or not voices:
        return None, None
    best = max(((float(np.mean([_cos(prompt, e) for e in embs])), spk) for spk, embs in voices.items()))
    return best
