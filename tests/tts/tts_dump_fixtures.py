"""A small synthetic code dump + phonemes directory for the TTS data and training tests.

Named apart from tests/codec/helpers.py: pytest imports test-directory modules by their bare name.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from codec.code_dump import DumpWriter, make_header, plan_shards
from data_prep.frontend import TextFrontend

FRAME_RATE = 75.0
PHONES = ("h", "ə", "l", "oʊ", "w", "ɜː", "d", "s", "t", "æ", "k", "m", "n", "iː", "ɪ", "p")


def phoneme_string(rng: np.random.Generator, n_phones: int) -> str:
    """Words of 3-5 phones with stress marks and separators, ending with a full stop."""
    toks, left = [], n_phones
    while left > 0:
        w = min(left, int(rng.integers(3, 6)))
        word = [str(p) for p in rng.choice(PHONES, w)]
        word.insert(1, "ˈ")
        if toks:
            toks.append("_")
        toks.extend(word)
        left -= w
    return " ".join(toks + ["."])


def token_durations(phonemes: str, frames: int, rng: np.random.Generator) -> Optional[list[int]]:
    """Random frames per token summing to `frames`: >= 1 per phone, 0 for stress marks, separators 0-1
    (None where that is impossible, as the aligner skips such utterances)."""
    toks = (phonemes or "").split()
    d = [0 if t == "ˈ" else (int(rng.integers(0, 2)) if t in ("_", ".") else 1) for t in toks]
    phones = [i for i, t in enumerate(toks) if t not in ("ˈ", "_", ".")]
    if not phones or sum(d) > frames:
        return None
    for _ in range(frames - sum(d)):
        d[phones[int(rng.integers(0, len(phones)))]] += 1
    return d


def write_durations(path: Path, rows: list[dict], rng: np.random.Generator) -> Path:
    """A durations file (docs/durations.md) for the dump's utterances."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for r in rows:
            d = token_durations(r["phonemes"], r["frames"], rng)
            if d is not None:
                fh.write(json.dumps({"id": r["id"], "frames": r["frames"], "durations": d}) + "\n")
    return path


def write_dump(root: str | Path, n_speakers: int = 4, per_speaker: int = 4, n_q: int = 4,
               codebook_size: int = 16, sha: str = "a" * 64, seed: int = 0,
               extra_rows: Optional[list[dict]] = None, utts_per_shard: int = 7,
               subset: str = "train") -> Path:
    """root/codes/<subset> (a dump of n_speakers x per_speaker utterances of 0.4-1.2 s at ~12 phones/s) and
    root/phonemes/tokens.txt. extra_rows: more utterances as dicts (id, speaker, frames, phonemes)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_speakers):
        for u in range(per_speaker):
            frames = int(rng.integers(30, 90))
            rows.append({"id": f"spk{s}_utt{u:02d}", "speaker": f"spk{s}", "frames": frames,
                         "phonemes": phoneme_string(rng, max(3, int(frames / FRAME_RATE * 12)))})
    rows += list(extra_rows or [])
    by_id = {r["id"]: r for r in rows}
    dump_dir = root / "codes" / subset
    plan = plan_shards([(r["id"], r["frames"]) for r in rows], utts_per_shard=utts_per_shard)
    writer = DumpWriter(dump_dir, make_header(sha, 24000, FRAME_RATE, n_q, codebook_size))
    writer.set_plan(plan)
    for i in writer.pending_shards(len(plan), 0, 1):
        with writer.shard(i) as w:
            for uid in plan[i]:
                r = by_id[uid]
                codes = rng.integers(0, codebook_size, (n_q, r["frames"])).astype(np.int16)
                w.add(uid, codes, speaker=r["speaker"], text="text", phonemes=r["phonemes"],
                      duration=r["frames"] / FRAME_RATE)
    writer.finalize(len(plan))
    write_durations(root / "durations" / f"{subset}.jsonl", rows, np.random.default_rng([seed, 1]))
    (root / "phonemes").mkdir(parents=True, exist_ok=True)
    TextFrontend.default().save(root / "phonemes")
    return dump_dir
