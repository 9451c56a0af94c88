"""Training data for the codec: random fixed-length crops from JSONL manifests.

Determinism (so a resumed run repeats the uninterrupted one exactly): no randomness comes from a
worker's RNG. The batch sampler turns a *global item index* g = step * batch * world + rank * batch + i
into (utterance, crop seed): the utterance is position g % N of the permutation of epoch g // N
(seeded by (seed, epoch)), the crop offset is drawn from a generator seeded by (seed, g). Any step,
rank, worker count or restart therefore yields the same crops. Resuming = building the loader with
`start_step`.

Audio is read through `data_prep.audio.load_audio` at the codec's sample rate.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from core.seeding import Stream, codec_epoch_rng, stream_rng
from data_prep.audio import AudioError, load_audio
from data_prep.libritts import read_manifest

log = logging.getLogger(__name__)

SILENCE_RETRIES = 4          # crops below `silence_db` are redrawn this many times (the loudest is kept)


def read_rows(paths: Sequence[str | Path]) -> list[dict]:
    """All rows of JSONL manifests (data_prep.libritts), in file order."""
    return [row for p in paths for row in read_manifest(p)]


def filter_rows(rows: list[dict], min_seconds: float, max_seconds: float) -> list[dict]:
    kept = [r for r in rows if min_seconds <= float(r["duration"]) <= max_seconds]
    if len(kept) < len(rows):
        log.info("kept %d of %d utterances within [%.2f, %.2f] s", len(kept), len(rows), min_seconds, max_seconds)
    return kept


def _rms_db(x: np.ndarray) -> float:
    return 20.0 * math.log10(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-10)


class CropDataset(Dataset):
    """Indexed by (row index, crop seed) pairs from `StepBatchSampler`; returns a [1, segment] crop, or with
    F0 tracks (`f0`: {id: track}, data_prep/pitch.py) the pair (crop [1, segment], F0 [frames]) read at the
    crop's frame centres (frame j at sample j * hop; 0 = unvoiced or past the utterance's end)."""

    def __init__(self, rows: list[dict], sample_rate: int, segment_samples: int, silence_db: float,
                 f0: dict[str, np.ndarray] | None = None, hop: int = 0):
        if not rows:
            raise ValueError("the training manifests hold no usable utterance")
        self.rows, self.sample_rate = rows, sample_rate
        self.segment, self.silence_db = segment_samples, silence_db
        self.f0, self.hop = f0, hop

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: tuple[int, int]):
        index, crop_seed = key
        row = self.rows[index]
        try:
            wav, _ = load_audio(row["path"], self.sample_rate)
        except AudioError as e:     # one bad file must not kill a long run; it becomes silence
            log.warning("skipping unreadable audio: %s", e)
            wav = np.zeros(0, dtype=np.float32)
        piece, start = self.crop(wav, crop_seed)
        piece = torch.from_numpy(piece)[None]
        if self.f0 is None:
            return piece
        return piece, torch.from_numpy(self._f0(self.f0[str(row["id"])], start, len(wav)))

    def _f0(self, track: np.ndarray, start: int, length: int) -> np.ndarray:
        from data_prep.pitch import f0_at
        frames = math.ceil(self.segment / self.hop)
        at = start + np.arange(frames) * self.hop
        f0 = f0_at(track, at / self.sample_rate)
        f0[at >= length] = 0.0
        return f0

    def crop(self, wav: np.ndarray, crop_seed: int) -> tuple[np.ndarray, int]:
        """(the crop [segment], its first sample in `wav`)."""
        seg = self.segment
        if len(wav) <= seg:          # short utterance: zero-padded at the end
            return np.pad(wav, (0, seg - len(wav))).astype(np.float32), 0
        rng = np.random.default_rng(crop_seed)
        best, best_db, best_start = None, -math.inf, 0
        for _ in range(SILENCE_RETRIES):
            start = int(rng.integers(0, len(wav) - seg + 1))
            piece = wav[start: start + seg]
            db = _rms_db(piece)
            if db > best_db:
                best, best_db, best_start = piece, db, start
            if db >= self.silence_db:
                break
        return np.ascontiguousarray(best, dtype=np.float32), best_start


class StepBatchSampler(Sampler):
    """Yields, for steps start_step .. max_steps - 1, this rank's batch of (row index, crop seed)."""

    def __init__(self, num_rows: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 start_step: int = 0, max_steps: int | None = None):
        self.n, self.batch, self.seed = num_rows, batch_size, seed
        self.rank, self.world = rank, world_size
        self.start_step, self.max_steps = start_step, max_steps
        self._perm_epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = codec_epoch_rng(self.seed, epoch).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def batch_for_step(self, step: int) -> list[tuple[int, int]]:
        first = (step * self.world + self.rank) * self.batch
        out = []
        for g in range(first, first + self.batch):
            epoch, pos = divmod(g, self.n)
            crop_seed = int(stream_rng(self.seed, Stream.CODEC_CROP, g).integers(0, 2 ** 63 - 1))
            out.append((int(self._permutation(epoch)[pos]), crop_seed))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while self.max_steps is None or step < self.max_steps:
            yield self.batch_for_step(step)
            step += 1

    def __len__(self) -> int:
        if self.max_steps is None:
            raise TypeError("an endless sampler has no length")
        return max(0, self.max_steps - self.start_step)


def _collate(items: list) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """[B, 1, T] crops, or with F0 the pair ([B, 1, T], [B, frames])."""
    if isinstance(items[0], tuple):
        return torch.stack([w for w, _ in items], 0), torch.stack([f for _, f in items], 0)
    return torch.stack(items, 0)


def needs_f0(cfg) -> bool:
    """The decoder trains F0/voicing outputs against the tracker (seanet.istft.pitch.source=harmonic)."""
    return cfg.seanet.decoder == "istft" and cfg.seanet.istft.pitch.source == "harmonic"


def load_train_f0(cfg, rows: list[dict]) -> dict[str, np.ndarray] | None:
    """The F0 tracks of the training rows (data.train_f0), or None when the decoder needs none.
    A missing cache or utterance is a one-line error before training starts."""
    if not needs_f0(cfg):
        return None
    from data_prep.pitch import load_cache
    if not cfg.data.train_f0:
        raise ValueError("seanet.istft.pitch.source=harmonic trains on F0 tracks: set data.train_f0 to the "
                         "caches of data.train_manifests (python -m data_prep.pitch --manifest M --out M.f0.npz)")
    tracks = load_cache(cfg.data.train_f0)
    missing = [str(r["id"]) for r in rows if str(r["id"]) not in tracks]
    if missing:
        raise ValueError(f"the F0 caches {list(cfg.data.train_f0)} lack {len(missing)} of {len(rows)} training "
                         f"utterances (e.g. {missing[0]!r}): rebuild them from the same manifests")
    return tracks


def build_train_loader(cfg, rank: int = 0, world_size: int = 1, start_step: int = 0) -> DataLoader:
    """The training DataLoader of one rank, positioned at `start_step` (cfg: CodecConfig)."""
    d = cfg.data
    rows = filter_rows(read_rows(d.train_manifests), d.min_seconds, d.max_seconds)
    dataset = CropDataset(rows, cfg.sample_rate, int(round(d.segment_seconds * cfg.sample_rate)), d.silence_db,
                          load_train_f0(cfg, rows), cfg.seanet.hop_length)
    sampler = StepBatchSampler(len(rows), d.batch_size, cfg.train.seed, rank, world_size, start_step,
                               cfg.train.max_steps)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=d.num_workers, collate_fn=_collate,
                      persistent_workers=False, prefetch_factor=4 if d.num_workers > 0 else None)


def load_eval_set(manifests: Sequence[str | Path], sample_rate: int, max_items: int,
                  max_seconds: float | None = 4.0) -> list[tuple[str, torch.Tensor]]:
    """The first `max_items` utterances of `manifests` as (id, wav [1, 1, T]), capped at `max_seconds`."""
    items = []
    for row in read_rows(manifests)[:max_items]:
        wav, _ = load_audio(row["path"], sample_rate)
        if max_seconds is not None:
            wav = wav[: int(max_seconds * sample_rate)]
        items.append((str(row.get("id", row["path"])), torch.from_numpy(np.ascontiguousarray(wav))[None, None]))
    return items
