"""Reading a code dump with numpy alone: `CodeDump(dir)[i or id] -> (codes int16 [n_q, T], meta)`.

Utterance `u` is `np.load(shard-{u.shard:05d}.npy, mmap_mode="r")[u.offset:u.offset+u.frames].T`
-> [n_q, frames]. The time-major `[frames, n_q]` layout makes every utterance one contiguous
block of the file (one read from a memory map, and shards are written by appending along axis 0).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from .format import (HEADER_FILE, INDEX_FILE, DumpError, HeaderFields, PathLike, _check_header, _completed_shards, _open_npy,
                     _read_json, _read_jsonl, shard_index_name, shard_name)

logger = logging.getLogger(__name__)


class CodeDump(HeaderFields):
    """Read a dump with numpy alone. Items: (codes int16 [n_q, T], meta dict).

    dump_dir: the dump directory. allow_unfinalized: without index.jsonl, read the complete
    per-shard indexes instead of failing (incomplete shards are never read either way).
    """

    def __init__(self, dump_dir: PathLike, allow_unfinalized: bool = False) -> None:
        self.dir = Path(dump_dir)
        if not self.dir.is_dir():
            raise DumpError(f"{self.dir}: no such code dump directory")
        header_path = self.dir / HEADER_FILE
        if not header_path.exists():
            raise DumpError(f"{self.dir}: not a code dump (no {HEADER_FILE})")
        self.header: dict = _check_header(_read_json(header_path), header_path)
        index_path = self.dir / INDEX_FILE
        if index_path.exists():
            records = _read_jsonl(index_path)
        elif allow_unfinalized:
            records = []
            for i in sorted(_completed_shards(self.dir)):
                records.extend(sorted(_read_jsonl(self.dir / shard_index_name(i)),
                                      key=lambda r: r["offset"]))
            logger.warning("%s: no %s; reading %d utterances from complete shards",
                           self.dir, INDEX_FILE, len(records))
        else:
            raise DumpError(f"{self.dir}: no {INDEX_FILE} (dump not finalized: run "
                            f"DumpWriter.finalize() or `python -m codec.code_dump finalize DIR`)")
        self._records = records
        self.ids: list[str] = [r["id"] for r in records]
        self._pos = {u: i for i, u in enumerate(self.ids)}
        if len(self._pos) != len(self.ids):
            raise DumpError(f"{index_path}: duplicate utterance ids")
        self.frames: np.ndarray = np.array([r["frames"] for r in records], dtype=np.int64)
        self._shards: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._records)

    def meta(self, key: Union[int, str]) -> dict:
        return dict(self._records[self._position(key)])

    def speakers(self) -> list[str]:
        """Sorted distinct speakers (None excluded)."""
        return sorted({str(r["speaker"]) for r in self._records if r.get("speaker") is not None})

    def by_speaker(self) -> dict[str, list[int]]:
        """speaker -> positions of its utterances (e.g. to draw a prompt of the same speaker)."""
        out: dict[str, list[int]] = {}
        for i, r in enumerate(self._records):
            if r.get("speaker") is not None:
                out.setdefault(str(r["speaker"]), []).append(i)
        return out

    # codes
    def _position(self, key: Union[int, str, np.integer]) -> int:
        if isinstance(key, str):
            try:
                return self._pos[key]
            except KeyError:
                raise KeyError(f"{self.dir}: no utterance {key!r}") from None
        i = int(key)
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.dir}: index {i} out of range for {len(self)} utterances")
        return i % len(self)

    def _shard(self, i: int) -> np.ndarray:
        arr = self._shards.get(i)
        if arr is None:
            arr = _open_npy(self.dir / shard_name(i))
            if arr.ndim != 2 or arr.shape[1] != self.n_q:
                raise DumpError(f"{self.dir / shard_name(i)}: shape {arr.shape}, expected "
                                f"[frames, {self.n_q}]")
            self._shards[i] = arr
        return arr

    def codes(self, key: Union[int, str], n_q: Optional[int] = None) -> np.ndarray:
        """int16 [n_q, T] (a fresh C-contiguous copy) of the first n_q codebooks (default all)."""
        r = self._records[self._position(key)]
        n_q = self.n_q if n_q is None else int(n_q)
        if not 1 <= n_q <= self.n_q:
            raise ValueError(f"n_q must be in 1..{self.n_q}, got {n_q}")
        block = self._shard(int(r["shard"]))[r["offset"]:r["offset"] + r["frames"], :n_q]
        if block.shape[0] != r["frames"]:
            raise DumpError(f"{self.dir / shard_name(int(r['shard']))}: truncated, utterance "
                            f"{r['id']!r} needs frames {r['offset']}..{r['offset'] + r['frames']}")
        return np.ascontiguousarray(block.T)

    def __getitem__(self, key: Union[int, str]) -> tuple[np.ndarray, dict]:
        return self.codes(key), self.meta(key)

    def __iter__(self) -> Iterator[tuple[np.ndarray, dict]]:
        for i in range(len(self)):
            yield self[i]

    def __getstate__(self) -> dict:  # picklable for DataLoader workers: re-open memory maps there
        state = self.__dict__.copy()
        state["_shards"] = {}
        return state

    def summary(self) -> dict:
        total = int(self.frames.sum())
        return {"dir": str(self.dir), "format": self.header["format"],
                "version": self.header["version"], "codec": self.header["codec"],
                "created": self.header.get("created"), "utterances": len(self),
                "shards": len({r["shard"] for r in self._records}), "frames": total,
                "hours": total / self.frame_rate / 3600 if self.frame_rate else None,
                "speakers": len(self.speakers()), "extra": self.header.get("extra", {})}
