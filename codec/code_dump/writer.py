"""Writing a code dump, possibly from several processes: one header, shards written atomically.

    plan = plan_shards([(id, duration), ...], utts_per_shard=1000)     # deterministic
    dump = DumpWriter(out_dir, make_header(sha, 24000, 75.0, n_q=8, codebook_size=1024))
    dump.set_plan(plan)                          # stored; a resumed job with another plan fails
    for i in dump.pending_shards(len(plan), rank, world_size):   # i % world_size == rank, not done
        with dump.shard(i) as w:                 # written atomically when the block ends
            for utt_id in plan[i]:
                w.add(utt_id, codes_KT, speaker=..., text=..., phonemes=..., duration=...)
    # after all ranks are done (e.g. accelerator.wait_for_everyone(); on the main process):
    dump.finalize(num_shards=len(plan))
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from core.io import temp_file_beside

from .format import (CODEC_KEYS, HEADER_FILE, INDEX_FILE, MAX_CODEBOOK_SIZE, PLAN_FILE, RESERVED_KEYS, DumpError, HeaderFields,
                     PathLike, _atomic_write, _check_header, _completed_shards, _dumps, _normalise_header,
                     _open_npy, _read_json, _read_jsonl, shard_index_name, shard_name)

logger = logging.getLogger(__name__)


def _to_numpy(codes: Any) -> np.ndarray:
    if hasattr(codes, "detach"):  # torch.Tensor, without importing torch
        codes = codes.detach().cpu().numpy()
    return np.asarray(codes)


class ShardWriter:
    """Accumulates one shard's utterances in memory and writes the shard atomically at close().

    The npy (int16 [sum_frames, n_q]) is written first, the per-shard index last, each via a temp
    file + os.replace: an index file present means the shard is complete. Used as a context
    manager, the shard is written only if the block ends without an exception.
    """

    def __init__(self, dump_dir: PathLike, shard: int, n_q: int, codebook_size: int) -> None:
        self.dir = Path(dump_dir)
        self.shard = int(shard)
        self.n_q = int(n_q)
        self.codebook_size = int(codebook_size)
        if self.codebook_size > MAX_CODEBOOK_SIZE:
            raise DumpError(f"{self.npy_path}: codebook_size {codebook_size} does not fit int16")
        self._chunks: list[np.ndarray] = []
        self._records: list[dict] = []
        self._ids: set[str] = set()
        self._offset = 0
        self.closed = False

    @property
    def npy_path(self) -> Path:
        return self.dir / shard_name(self.shard)

    @property
    def index_path(self) -> Path:
        return self.dir / shard_index_name(self.shard)

    def __len__(self) -> int:
        return len(self._records)

    def add(self, utt_id: str, codes: Any, **meta: Any) -> None:
        """Add an utterance. codes: integer [K, T] (numpy or torch), K == n_q, 0 <= code < codebook_size.

        meta: JSON-serialisable fields stored in the index (speaker, text, phonemes, duration,
        scale, ...); speaker/text/phonemes default to None.
        """
        if self.closed:
            raise DumpError(f"{self.npy_path}: shard already closed")
        utt_id = str(utt_id)
        where = f"{self.npy_path} (utterance {utt_id!r})"
        if utt_id in self._ids:
            raise DumpError(f"{where}: duplicate id in shard")
        bad = [k for k in RESERVED_KEYS if k in meta]
        if bad:
            raise DumpError(f"{where}: meta may not set reserved fields {bad}")
        arr = _to_numpy(codes)
        if arr.ndim != 2 or arr.shape[0] != self.n_q:
            raise DumpError(f"{where}: codes must be [n_q={self.n_q}, T], got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise DumpError(f"{where}: codes must be integers, got dtype {arr.dtype}")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= self.codebook_size):
            raise DumpError(f"{where}: codes out of range [{int(arr.min())}, {int(arr.max())}] "
                            f"for codebook_size {self.codebook_size}")
        frames = int(arr.shape[1])
        record = {"id": utt_id, "shard": self.shard, "offset": self._offset, "frames": frames,
                  "speaker": None, "text": None, "phonemes": None}
        record.update(meta)
        line = _dumps(record)  # fail now, not at close(), on unserialisable meta
        self._chunks.append(np.ascontiguousarray(arr.T, dtype=np.int16))
        self._records.append(json.loads(line))
        self._ids.add(utt_id)
        self._offset += frames

    def close(self) -> None:
        """Write npy then index, each atomically. Idempotent."""
        if self.closed:
            return
        data = (np.concatenate(self._chunks, axis=0) if self._chunks
                else np.zeros((0, self.n_q), dtype=np.int16))
        assert data.shape == (self._offset, self.n_q) and data.dtype == np.int16
        _atomic_write(self.npy_path, lambda fh: np.save(fh, data, allow_pickle=False))
        text = "".join(_dumps(r) + "\n" for r in self._records)
        _atomic_write(self.index_path, lambda fh: fh.write(text.encode("utf-8")))
        self.closed = True
        self._chunks = []
        logger.info("wrote %s: %d utterances, %d frames", self.npy_path, len(self._records),
                    self._offset)

    def discard(self) -> None:
        """Drop the accumulated utterances without writing anything."""
        self._chunks, self._records, self._ids = [], [], set()
        self.closed = True

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            logger.warning("not writing %s: %s", self.npy_path, exc)
            self.discard()


class DumpWriter(HeaderFields):
    """A dump directory being written, possibly by several processes (one header, many shards).

    header: a dict with a 'codec' section (see `make_header`). If header.json exists already, its
    codec section (checkpoint_sha256, sample_rate, frame_rate, n_q, codebook_size, dtype) must be
    identical, else DumpError: codes of two codecs are never mixed in one dump.
    """

    def __init__(self, dump_dir: PathLike, header: dict) -> None:
        self.dir = Path(dump_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / HEADER_FILE
        wanted = _normalise_header(header, str(path))
        if not path.exists():
            self._create_once(path, json.dumps(wanted, indent=2, ensure_ascii=False) + "\n")
        existing = _check_header(_read_json(path), path)
        diff = {k: (existing["codec"].get(k), wanted["codec"][k]) for k in CODEC_KEYS
                if existing["codec"].get(k) != wanted["codec"][k]}
        if diff:
            detail = "; ".join(f"{k}: existing {a!r} vs new {b!r}" for k, (a, b) in diff.items())
            raise DumpError(f"{path}: this dump was written with a different codec ({detail}); "
                            f"write to another directory instead of mixing codes")
        self.header = existing

    @staticmethod
    def _create_once(path: Path, text: str) -> None:
        """Create `path` with `text` unless another process did first (atomic create-if-absent)."""
        tmp = str(temp_file_beside(path))
        try:
            with open(tmp, "wb") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # fails if path exists: first writer wins, never overwritten
            except FileExistsError:
                pass
            except OSError:  # file system without hard links
                if not path.exists():
                    os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def set_plan(self, plan: Sequence[Sequence[str]]) -> list[list[str]]:
        """Store the shard plan in plan.json, or check it equals the stored one (resumed job)."""
        plan = [[str(u) for u in shard] for shard in plan]
        path = self.dir / PLAN_FILE
        if not path.exists():
            self._create_once(path, _dumps({"shards": plan}) + "\n")
        stored = _read_json(path).get("shards")
        if stored != plan:
            raise DumpError(f"{path}: the stored shard plan differs from this job's plan "
                            f"(did the manifest change?); use a new directory or delete the dump")
        return plan

    def load_plan(self) -> Optional[list[list[str]]]:
        path = self.dir / PLAN_FILE
        return _read_json(path)["shards"] if path.exists() else None

    def completed_shards(self) -> set[int]:
        """Shards whose index file exists (written last, so the npy is complete too)."""
        return _completed_shards(self.dir)

    def pending_shards(self, num_shards: int, rank: int = 0, world_size: int = 1) -> list[int]:
        """This rank's shards (i % world_size == rank) that are not complete yet."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} not in [0, {world_size})")
        done = self.completed_shards()
        return [i for i in range(rank, num_shards, world_size) if i not in done]

    def shard(self, i: int) -> ShardWriter:
        return ShardWriter(self.dir, i, self.n_q, self.codebook_size)

    def finalize(self, num_shards: Optional[int] = None) -> int:
        """Merge complete per-shard indexes into index.jsonl (by shard, then offset).

        num_shards: if given, every shard 0..num_shards-1 must be complete (else DumpError listing
        the missing ones). Checks ids are unique and every shard's npy covers its index.
        Returns the number of utterances.
        """
        done = sorted(self.completed_shards())
        if num_shards is not None:
            missing = sorted(set(range(num_shards)) - set(done))
            if missing:
                raise DumpError(f"{self.dir}: cannot finalize, {len(missing)} shard(s) incomplete: "
                                f"{missing[:20]}{' ...' if len(missing) > 20 else ''}")
            done = [i for i in done if i < num_shards]
        records: list[dict] = []
        seen: dict[str, int] = {}
        for i in done:
            shard_records = sorted(_read_jsonl(self.dir / shard_index_name(i)),
                                   key=lambda r: r["offset"])
            npy = self.dir / shard_name(i)
            arr = _open_npy(npy)
            end = max((r["offset"] + r["frames"] for r in shard_records), default=0)
            if arr.ndim != 2 or arr.shape[1] != self.n_q or arr.shape[0] < end:
                raise DumpError(f"{npy}: shape {arr.shape} does not cover its index "
                                f"(needs [>= {end}, {self.n_q}])")
            for r in shard_records:
                if r["id"] in seen:
                    raise DumpError(f"{self.dir / shard_index_name(i)}: id {r['id']!r} also in "
                                    f"shard {seen[r['id']]}")
                seen[r["id"]] = i
            records.extend(shard_records)
        text = "".join(_dumps(r) + "\n" for r in records)
        _atomic_write(self.dir / INDEX_FILE, lambda fh: fh.write(text.encode("utf-8")))
        logger.info("finalized %s: %d shards, %d utterances", self.dir, len(done), len(records))
        return len(records)
