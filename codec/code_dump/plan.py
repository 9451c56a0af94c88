"""Which utterances go into which shard of a code dump: a deterministic plan (docs/code_dump.md)."""
from __future__ import annotations

from typing import Iterable, Optional


def plan_shards(ids_with_lengths: Iterable[tuple[str, float]], utts_per_shard: Optional[int] = None,
                frames_per_shard: Optional[float] = None) -> list[list[str]]:
    """Split utterances into shards deterministically; returns shard i's ids at position i.

    ids_with_lengths: (id, length) pairs; length in any unit (frames, samples or seconds) —
        `frames_per_shard` is a budget in the same unit.
    Exactly one of `utts_per_shard` (at most that many utterances per shard) or
    `frames_per_shard` (greedy: a shard closes before its total length would exceed the budget;
    an utterance longer than the budget gets a shard of its own).

    The result depends only on the set of (id, length) pairs, not on their order: utterances are
    sorted by id (LibriTTS ids start with the speaker, so shards group speakers), cut into shards
    in that order, and each shard is sorted by length, longest first (then id) so a tokenizer
    batches similar lengths and meets its largest batch first. Duplicate ids are an error.
    """
    if (utts_per_shard is None) == (frames_per_shard is None):
        raise ValueError("give exactly one of utts_per_shard or frames_per_shard")
    if utts_per_shard is not None and utts_per_shard < 1:
        raise ValueError(f"utts_per_shard must be >= 1, got {utts_per_shard}")
    if frames_per_shard is not None and frames_per_shard <= 0:
        raise ValueError(f"frames_per_shard must be > 0, got {frames_per_shard}")
    items: dict[str, float] = {}
    for utt_id, length in ids_with_lengths:
        utt_id = str(utt_id)
        if utt_id in items:
            raise ValueError(f"duplicate utterance id {utt_id!r} in plan_shards input")
        items[utt_id] = float(length)
    ordered = sorted(items)
    shards: list[list[str]] = []
    if utts_per_shard is not None:
        shards = [ordered[i:i + utts_per_shard] for i in range(0, len(ordered), utts_per_shard)]
    else:
        current: list[str] = []
        total = 0.0
        for utt_id in ordered:
            if current and total + items[utt_id] > frames_per_shard:
                shards.append(current)
                current, total = [], 0.0
            current.append(utt_id)
            total += items[utt_id]
        if current:
            shards.append(current)
    return [sorted(s, key=lambda u: (-items[u], u)) for s in shards]


def make_batches(ids: list[str], durations: dict[str, float], max_seconds: float,
                 max_items: int) -> list[list[str]]:
    """Consecutive (length-sorted) ids grouped so that items x longest <= max_seconds."""
    batches: list[list[str]] = []
    cur: list[str] = []
    longest = 0.0
    for u in ids:
        d = durations[u]
        if cur and (len(cur) >= max_items or max(longest, d) * (len(cur) + 1) > max_seconds):
            batches.append(cur)
            cur, longest = [], 0.0
        cur.append(u)
        longest = max(longest, d)
    if cur:
        batches.append(cur)
    return batches
