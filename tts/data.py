"""Training data for the VALL-E models: the code dump (docs/code_dump.md) as batches of `TTSBatch`.

    ds = TTSDataset(dump_dir, frontend.tokens_to_ids, cfg.data, n_q=8, part="nar", prompt_mode="prefix")
    loader = build_train_loader(ds, cfg.data, seed, rank, world_size, start_step)   # one batch per step

- Codes are read from the dump's memory-mapped shards (`codec.code_dump.CodeDump`), only the first
  `n_q` codebooks (a strided view of the time-major shard, copied once per item).
- Filters (counted in `FilterStats` and logged): duration outside [min_seconds, max_seconds], no
  phonemes, too many phonemes, a phonemes-per-second rate outside [min_pps, max_pps] (pronounced
  phones only: stress marks, punctuation and word separators do not count), an item that alone
  exceeds the batch budget, and in `other_utterance` mode a speaker with a single utterance.
  Why the rate filter: manifests keep pairs whose text cannot match the audio (silence with a
  sentence, a 3,000-word transcript on 2 s, punctuation only); an aligner-free model cannot learn
  from them and they poison the AR's alignment.
- Batches: dynamic, by padded sequence positions. An item's cost is its model sequence length
  (phonemes + code frames, + the longest prompt in other_utterance mode); a batch holds items of one
  duration bucket (quantiles of the cost) and `len(batch) * max(cost) <= max_frames_per_batch`.
- Exact resume and multi-GPU: the batches of an epoch are a function of (seed, epoch), step s takes
  the epoch's batches s*W .. s*W+W-1 (rank r the r-th), and each item carries a seed drawn from
  (seed, step, rank, position) for its prompt. A run resumed at step s reads what the original read.
- Prompts: `prefix` -> prompt = codes[:, :p], target = codes[:, p:], phonemes of
  the whole utterance (p uniform in [prompt_min_seconds, prompt_max_seconds], at most
  prompt_max_fraction of the utterance); `other_utterance` -> the prompt is a random window (at most
  prompt_max_seconds) of another utterance of the same speaker. The AR gets the whole utterance as
  `codes` and an empty prompt in both modes (it models codebook 1 given the phonemes).
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from codec.code_dump import CodeDump
from core.seeding import Stream, stream_rng, stream_seed
from data_prep.symbols import NON_PHONES, WORD_SEP

from .align.durations import read_durations
from .batch import TTSBatch
from .config import DataConfig, Part, PromptMode

log = logging.getLogger(__name__)



@dataclass
class FilterStats:
    """How many utterances a dataset kept and why it dropped the others."""
    total: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        return f"kept {self.kept} of {self.total} utterances (dropped: {reasons})"

    def to_dict(self) -> dict:
        return {"total": self.total, "kept": self.kept, "dropped": dict(self.dropped)}


def count_phones(phoneme_string: str) -> int:
    """Pronounced phones of a dump `phonemes` field (no stress marks, punctuation, separators)."""
    return sum(t not in NON_PHONES for t in phoneme_string.split())


class TTSDataset(Dataset):
    """Filtered utterances of one code dump. Items are keyed by (position, seed) -> dict of arrays.

    dump_dir: a code dump. encode: phoneme string -> ids (the text front end's `tokens_to_ids`).
    n_q: codebooks read (the first n_q; must be <= the dump's). part: "ar" | "nar".
    """

    def __init__(self, dump_dir: str | Path, encode: Callable[[str], Sequence[int]], cfg: DataConfig,
                 n_q: int, part: Part, prompt_mode: PromptMode = "prefix", name: str = "train",
                 durations: Optional[str | Path] = None) -> None:
        self.dump = CodeDump(dump_dir)
        self.cfg, self.part, self.prompt_mode, self.name = cfg, part, prompt_mode, name
        # the AR's context from another utterance (DataConfig.ar_context_seconds), in frames
        self.context = int(round(cfg.ar_context_seconds * self.dump.frame_rate)) if part == "ar" else 0
        if self.context and durations is None:
            raise ValueError("data.ar_context_seconds needs phoneme durations (model.ar_alignment=durations)")
        self.sep_id = int(encode(WORD_SEP)[0])          # joins the context and the item, as synthesis joins them
        if not 1 <= n_q <= self.dump.n_q:
            raise ValueError(f"{self.dump.dir}: the model needs n_q={n_q} codebooks, the dump has "
                             f"{self.dump.n_q} (model.n_q must be <= the dump's header codec.n_q)")
        self.n_q = n_q
        fr = self.dump.frame_rate
        self.prompt_min = max(1, int(round(cfg.prompt_min_seconds * fr)))
        self.prompt_max = max(self.prompt_min, int(round(cfg.prompt_max_seconds * fr)))
        self.stats = FilterStats(total=len(self.dump))
        table = ({k: np.asarray(r["durations"], dtype=np.int32) for k, r in read_durations(durations).items()}
                 if durations is not None else None)
        keep, ids, durs, offsets = [], [], [], [0]
        for i in range(len(self.dump)):
            m = self.dump.meta(i)
            reason = self._reject(m, fr)
            if reason is None:
                seq = np.asarray(encode(m["phonemes"]), dtype=np.int32)
                if len(seq) + m["frames"] + self._extra_cost() > cfg.max_frames_per_batch:
                    reason = "over_batch_budget"
            if reason is None and table is not None:
                d = table.get(self.dump.ids[i])
                if d is None:
                    reason = "no_durations"          # the aligner could not align it
                elif len(d) != len(seq) or int(d.sum()) != int(m["frames"]):
                    reason = "durations_mismatch"
                else:
                    durs.append(d)
            if reason is not None:
                self.stats.dropped[reason] += 1
                continue
            keep.append(i)
            ids.append(seq)
            offsets.append(offsets[-1] + len(seq))
        self.positions = np.asarray(keep, dtype=np.int64)          # kept item -> dump position
        self._phon = np.concatenate(ids) if ids else np.zeros(0, np.int32)
        # frames per phoneme token, laid out like _phon (None without a durations file)
        self._dur = (np.concatenate(durs) if durs else np.zeros(0, np.int32)) if table is not None else None
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self.frames = self.dump.frames[self.positions] if keep else np.zeros(0, np.int64)
        self.n_phonemes = np.diff(self._offsets)
        self.speakers = [str(self.dump.meta(int(p)).get("speaker")) for p in self.positions]
        self._by_speaker: dict[str, np.ndarray] = {}
        if prompt_mode == "other_utterance" or self.context:
            self._drop_single_speakers()
        self.stats.kept = len(self.positions)
        log.info("%s data %s: %s", name, self.dump.dir, self.stats.summary())
        if not len(self.positions):
            raise ValueError(f"{self.dump.dir}: no utterance passed the data filters ({self.stats.summary()}); "
                             f"check data.min_seconds/max_seconds/min_pps/max_pps")

    # ---- filtering
    def _extra_cost(self) -> int:
        if self.part == "nar" and self.prompt_mode == "other_utterance":
            return self.prompt_max
        return self.context + self.context // 2 if self.context else 0     # context frames + its phonemes (bound)

    def _reject(self, m: dict, frame_rate: float) -> Optional[str]:
        c = self.cfg
        seconds = m["frames"] / frame_rate
        if seconds < c.min_seconds:
            return "too_short"
        if seconds > c.max_seconds:
            return "too_long"
        ph = m.get("phonemes")
        if not ph or not ph.strip():
            return "no_phonemes"
        n_tok = len(ph.split())
        if n_tok > c.max_phonemes:
            return "too_many_phonemes"
        pps = count_phones(ph) / seconds
        if pps < c.min_pps:
            return "phones_per_second_low"
        if pps > c.max_pps:
            return "phones_per_second_high"
        if self.part == "nar" and self.prompt_mode == "prefix" and m["frames"] < 2:
            return "too_short"
        return None

    def _drop_single_speakers(self) -> None:
        spk = np.asarray(self.speakers, dtype=object)
        counts = Counter(self.speakers)
        ok = np.array([counts[s] >= 2 and s != "None" for s in self.speakers], dtype=bool)
        if (~ok).any():
            self.stats.dropped["no_other_utterance"] += int((~ok).sum())
            idx = np.flatnonzero(ok)
            self.positions, self.frames = self.positions[idx], self.frames[idx]
            if self._dur is not None:
                self._dur = np.concatenate([self.durations(int(i)) for i in idx]) if len(idx) else self._dur[:0]
            self._phon = np.concatenate([self.phonemes(int(i)) for i in idx]) if len(idx) else self._phon[:0]
            lens = self.n_phonemes[idx]
            self._offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            self.n_phonemes = lens
            spk = spk[idx]
            self.speakers = [str(s) for s in spk]
        for s in sorted(set(self.speakers)):
            self._by_speaker[s] = np.flatnonzero(np.asarray(self.speakers, dtype=object) == s)

    # ---- access
    def __len__(self) -> int:
        return len(self.positions)

    def phonemes(self, i: int) -> np.ndarray:
        return self._phon[self._offsets[i]:self._offsets[i + 1]]

    def durations(self, i: int) -> Optional[np.ndarray]:
        """Frames per phoneme token of item i (sums to its frames), or None without a durations file."""
        return None if self._dur is None else self._dur[self._offsets[i]:self._offsets[i + 1]]

    def costs(self) -> np.ndarray:
        """Sequence positions each item occupies in a batch: [N] int64."""
        return self.n_phonemes + self.frames + self._extra_cost()

    def utt_id(self, i: int) -> str:
        return self.dump.ids[int(self.positions[i])]

    def prefix_length(self, T: int, rng: np.random.Generator) -> int:
        """Prompt frames of a `prefix` split of a T-frame utterance: 1 <= p <= T - 1."""
        hi = min(self.prompt_max, int(T * self.cfg.prompt_max_fraction), T - 1)
        hi = max(hi, 1)
        lo = min(self.prompt_min, hi)
        return int(rng.integers(lo, hi + 1))

    def other_utterance(self, i: int, rng: np.random.Generator) -> int:
        """Another item of the same speaker (never i itself)."""
        group = self._by_speaker[self.speakers[i]]
        k = int(rng.integers(0, len(group) - 1))                # uniform over the group minus i
        return int(group[k + 1]) if k >= int(np.searchsorted(group, i)) else int(group[k])

    def _with_context(self, i: int, codes: np.ndarray, rng: np.random.Generator) -> dict:
        """[the tail (<= context frames, from a phoneme boundary) of another utterance of i's speaker ; sep ; i]"""
        j = self.other_utterance(i, rng)
        dj = self.durations(j)
        starts = np.cumsum(dj) - dj
        k = int(np.searchsorted(starts, max(0, int(dj.sum()) - self.context), side="left"))   # first kept token
        cut = int(starts[k]) if k < len(dj) else int(dj.sum())
        other = self.dump.codes(int(self.positions[j]), self.n_q)[:, cut:]
        return {"index": i, "codes": np.concatenate([other, codes], axis=1),
                "phonemes": np.concatenate([self.phonemes(j)[k:], [self.sep_id], self.phonemes(i)]).astype(np.int32),
                "durations": np.concatenate([dj[k:], [0], self.durations(i)]).astype(np.int32),
                "prompt": codes[:, :0]}

    def __getitem__(self, key: tuple[int, int]) -> dict:
        i, seed = int(key[0]), int(key[1])
        rng = np.random.default_rng(seed)
        codes = self.dump.codes(int(self.positions[i]), self.n_q)          # int16 [K, T]
        empty = codes[:, :0]
        if self.part == "ar" and self.context:
            return self._with_context(i, codes, rng)
        if self.part == "ar":
            prompt, target = empty, codes
        elif self.prompt_mode == "prefix":
            p = self.prefix_length(codes.shape[1], rng)
            prompt, target = codes[:, :p], codes[:, p:]
        else:
            j = self.other_utterance(i, rng)
            other = self.dump.codes(int(self.positions[j]), self.n_q)
            n = min(other.shape[1], int(rng.integers(self.prompt_min, self.prompt_max + 1)))
            start = int(rng.integers(0, other.shape[1] - n + 1))
            prompt, target = other[:, start:start + n], codes
        # durations describe the whole utterance: only where prompt + target is that utterance
        dur = self.durations(i) if (self.part == "ar" or self.prompt_mode == "prefix") else None
        return {"index": i, "phonemes": self.phonemes(i), "codes": target, "prompt": prompt, "durations": dur}


def collate(items: list[dict]) -> TTSBatch:
    """Pad a list of dataset items into a TTSBatch (phonemes padded with 0 = <pad>, codes with 0)."""
    B = len(items)
    K = items[0]["codes"].shape[0]
    L = max(len(it["phonemes"]) for it in items)
    T = max(it["codes"].shape[1] for it in items)
    P = max(it["prompt"].shape[1] for it in items)
    ph = torch.zeros(B, L, dtype=torch.long)
    codes = torch.zeros(B, K, T, dtype=torch.long)
    prompt = torch.zeros(B, K, P, dtype=torch.long)
    for b, it in enumerate(items):
        ph[b, :len(it["phonemes"])] = torch.from_numpy(it["phonemes"].astype(np.int64))
        codes[b, :, :it["codes"].shape[1]] = torch.from_numpy(it["codes"].astype(np.int64))
        prompt[b, :, :it["prompt"].shape[1]] = torch.from_numpy(it["prompt"].astype(np.int64))
    dur = None
    if all(it.get("durations") is not None for it in items):
        dur = torch.zeros(B, L, dtype=torch.long)
        for b, it in enumerate(items):
            dur[b, :len(it["durations"])] = torch.from_numpy(it["durations"].astype(np.int64))
    lens = lambda key, ax: torch.tensor([it[key].shape[ax] for it in items], dtype=torch.long)  # noqa: E731
    return TTSBatch(phonemes=ph, phoneme_lens=lens("phonemes", 0), codes=codes, code_lens=lens("codes", 1),
                    prompt=prompt, prompt_lens=lens("prompt", 1), durations=dur,
                    index=torch.tensor([int(it["index"]) for it in items], dtype=torch.long))


# ------------------------------------------------------------------------------------------ batching
def bucket_batches(costs: np.ndarray, order: np.ndarray, max_cost: int, num_buckets: int,
                   max_batch_size: int) -> list[np.ndarray]:
    """Greedy batches of `order`'s items within cost-quantile buckets: len(batch) * max(cost) <= max_cost."""
    if not len(order):
        return []
    edges = np.unique(np.quantile(costs, np.linspace(0, 1, num_buckets + 1)[1:-1])) if num_buckets > 1 else []
    bucket = np.searchsorted(edges, costs[order], side="right")
    out = []
    for b in range(len(edges) + 1):
        cur, longest = [], 0
        for i in order[bucket == b]:
            c = int(costs[i])
            if cur and (max(longest, c) * (len(cur) + 1) > max_cost or len(cur) >= max_batch_size):
                out.append(np.asarray(cur, dtype=np.int64))
                cur, longest = [], 0
            cur.append(int(i))
            longest = max(longest, c)
        if cur:
            out.append(np.asarray(cur, dtype=np.int64))
    return out


class StepBatchSampler(Sampler):
    """For steps start_step.., this rank's batch as [(item, item seed)]; endless (the loop stops it).

    Epoch e's batches: the items shuffled by (seed, e), cut into bucketed batches, the batches
    shuffled. Step s of an epoch gives rank r batch s * world + r; an epoch has len(batches) // world
    steps (at least 1), so every rank makes the same number of steps.

    phases: [(first step, item indices), ...] sorted by step (default: all items from step 0). A
    curriculum uses two: the short items first, then all; each phase has its own epochs.
    """

    def __init__(self, costs: np.ndarray, max_cost: int, num_buckets: int, max_batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, start_step: int = 0,
                 phases: Optional[list[tuple[int, np.ndarray]]] = None) -> None:
        self.costs, self.max_cost, self.num_buckets = np.asarray(costs), int(max_cost), num_buckets
        self.max_batch_size, self.seed = max_batch_size, seed
        self.rank, self.world, self.start_step = rank, world_size, start_step
        self.phases = phases or [(0, np.arange(len(self.costs)))]
        if self.phases[0][0] != 0 or any(len(items) == 0 for _, items in self.phases):
            raise ValueError("StepBatchSampler: phases must start at step 0 and hold items")
        self._epochs: dict[int, list[list[np.ndarray]]] = {}     # phase -> cached batches of its epochs
        self._first_step: dict[int, list[int]] = {}               # phase -> first local step of each epoch

    def epoch_batches(self, epoch: int, phase: int = 0) -> list[np.ndarray]:
        epochs = self._epochs.setdefault(phase, [])
        firsts = self._first_step.setdefault(phase, [0])
        items = np.asarray(self.phases[phase][1])
        while len(epochs) <= epoch:
            rng = stream_rng(self.seed, Stream.TTS_BUCKETS, phase, len(epochs))
            order = items[rng.permutation(len(items))]
            batches = bucket_batches(self.costs, order, self.max_cost, self.num_buckets, self.max_batch_size)
            batches = [batches[k] for k in rng.permutation(len(batches))]
            epochs.append(batches)
            firsts.append(firsts[-1] + max(1, len(batches) // self.world))
        return epochs[epoch]

    def locate(self, step: int) -> tuple[int, int, int]:
        """(phase, epoch within the phase, step within the epoch) of a global step."""
        phase = max(p for p, (first, _) in enumerate(self.phases) if first <= step)
        local = step - self.phases[phase][0]
        e = 0
        while True:
            self.epoch_batches(e, phase)
            if local < self._first_step[phase][e + 1]:
                return phase, e, local - self._first_step[phase][e]
            e += 1

    def batch_for_step(self, step: int) -> list[tuple[int, int]]:
        phase, epoch, j = self.locate(step)
        batches = self.epoch_batches(epoch, phase)
        batch = batches[(j * self.world + self.rank) % len(batches)]
        seeds = stream_rng(self.seed, Stream.TTS_ITEMS, step, self.rank).integers(0, 2 ** 62, len(batch))
        return [(int(i), int(s)) for i, s in zip(batch, seeds)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            yield self.batch_for_step(step)
            step += 1


def curriculum_phases(ds: "TTSDataset", cfg: DataConfig) -> Optional[list[tuple[int, np.ndarray]]]:
    """Short utterances (<= curriculum_max_seconds) for the first curriculum_steps, then all (or None).

    Why: an AR that must align text to codes learns the alignment sooner on short utterances
    (fewer positions to attend over, more examples per batch), see the README."""
    if cfg.curriculum_steps <= 0:
        return None
    short = np.flatnonzero(ds.frames <= cfg.curriculum_max_seconds * ds.dump.frame_rate)
    if not len(short):
        log.warning("curriculum: no utterance is <= %.1f s; training on all from step 0", cfg.curriculum_max_seconds)
        return None
    log.info("curriculum: %d of %d utterances (<= %.1f s) for the first %d steps",
             len(short), len(ds), cfg.curriculum_max_seconds, cfg.curriculum_steps)
    return [(0, short), (cfg.curriculum_steps, np.arange(len(ds)))]


def build_train_loader(ds: TTSDataset, cfg: DataConfig, seed: int, rank: int = 0, world_size: int = 1,
                       start_step: int = 0) -> DataLoader:
    sampler = StepBatchSampler(ds.costs(), cfg.max_frames_per_batch, cfg.num_buckets, cfg.max_batch_size,
                               seed, rank, world_size, start_step, phases=curriculum_phases(ds, cfg))
    return DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers,
                      persistent_workers=False, prefetch_factor=4 if cfg.num_workers > 0 else None)


def validation_batches(ds: TTSDataset, cfg: DataConfig, seed: int, rank: int = 0,
                       world_size: int = 1) -> list[TTSBatch]:
    """The validation set of one rank: the first `valid_max_utterances` items (by id), in fixed
    batches (the same prompts every time); rank r takes batches r, r + W, ... (the caller reduces)."""
    n = len(ds) if cfg.valid_max_utterances is None else min(len(ds), cfg.valid_max_utterances)
    chosen = np.asarray(sorted(range(len(ds)), key=ds.utt_id)[:n], dtype=np.int64)
    costs = ds.costs()
    order = chosen[np.argsort(costs[chosen], kind="stable")]
    batches = bucket_batches(costs, order, cfg.max_frames_per_batch, 1, cfg.max_batch_size)
    out = []
    for b in batches[rank::world_size]:
        out.append(collate([ds[(int(i), stream_seed(seed, Stream.TTS_VALID, int(i)))] for i in b]))
    return out


__all__ = ["TTSDataset", "FilterStats", "collate", "bucket_batches", "StepBatchSampler", "build_train_loader",
           "validation_batches", "count_phones", "curriculum_phases"]
