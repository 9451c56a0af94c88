"""The corpus code dump: a tokenized corpus (codec codes + text) for language models.

Full specification: docs/code_dump.md. In short, a dump directory holds

    header.json                  format, version, codec info (checkpoint sha256, sample_rate,
                                 frame_rate, n_q, codebook_size, dtype "int16"), created, extra
    plan.json                    (optional) the utterance ids of every shard, for resumable jobs
    shard-00000.npy              int16 [frames_in_shard, n_q], utterances concatenated along time
    shard-00000.index.jsonl      one JSON line per utterance of the shard; written LAST, so its
                                 presence means the shard is complete
    ...
    index.jsonl                  all per-shard indexes merged (sorted by shard, then offset)

Utterance `u` is `np.load(shard-{u.shard:05d}.npy, mmap_mode="r")[u.offset:u.offset+u.frames].T`
-> [n_q, frames]. The time-major `[frames, n_q]` layout makes every utterance one contiguous
block of the file (one read from a memory map, and shards are written by appending along axis 0).

Writing (a tokenization job, possibly under `accelerate launch`):

    plan = plan_shards([(id, duration), ...], utts_per_shard=1000)     # deterministic
    dump = DumpWriter(out_dir, make_header(sha, 24000, 75.0, n_q=8, codebook_size=1024))
    dump.set_plan(plan)                          # stored; a resumed job with another plan fails
    for i in dump.pending_shards(len(plan), rank, world_size):   # i % world_size == rank, not done
        with dump.shard(i) as w:                 # written atomically when the block ends
            for utt_id in plan[i]:
                w.add(utt_id, codes_KT, speaker=..., text=..., phonemes=..., duration=...)
    # after all ranks are done (e.g. accelerator.wait_for_everyone(); on the main process):
    dump.finalize(num_shards=len(plan))

Reading needs only numpy and json: `CodeDump(dir)[i or id] -> (codes int16 [n_q, T], meta)`.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from core.io import atomic_path, temp_file_beside

logger = logging.getLogger(__name__)

FORMAT_NAME = "ndvq-code-dump"
FORMAT_VERSION = 1
DTYPE = "int16"
MAX_CODEBOOK_SIZE = int(np.iinfo(np.int16).max) + 1  # 32768: codes 0..32767 fit int16
HEADER_FILE = "header.json"
INDEX_FILE = "index.jsonl"
PLAN_FILE = "plan.json"
RESERVED_KEYS = ("id", "shard", "offset", "frames")
# codec fields that must agree between an existing header.json and a writer's header
CODEC_KEYS = ("checkpoint_sha256", "sample_rate", "frame_rate", "n_q", "codebook_size", "dtype")
_SHARD_RE = re.compile(r"^shard-(\d{5,})\.index\.jsonl$")

PathLike = Union[str, os.PathLike]


class DumpError(ValueError):
    """A code dump that cannot be written or read as asked; the message names the file."""


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.npy"


def shard_index_name(i: int) -> str:
    return f"shard-{i:05d}.index.jsonl"


# -------------------------------------------------------------------------------- atomic writes
def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Call write(binary file) on a temporary file next to `path`, then move it onto `path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "tolist"):  # torch tensors, without importing torch
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_json_default)


# ---------------------------------------------------------------------------------------- header
def make_header(checkpoint_sha256: str, sample_rate: int, frame_rate: float, n_q: int,
                codebook_size: int, extra: Optional[dict] = None) -> dict:
    """A complete header.json dict for `DumpWriter` (created time filled in now)."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "codec": {
            "checkpoint_sha256": str(checkpoint_sha256),
            "sample_rate": int(sample_rate),
            "frame_rate": float(frame_rate),
            "n_q": int(n_q),
            "codebook_size": int(codebook_size),
            "dtype": DTYPE,
        },
        "layout": "shard-XXXXX.npy: int16 [frames, n_q], utterances concatenated along axis 0",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "extra": dict(extra or {}),
    }


def _normalise_header(header: dict, source: str) -> dict:
    """Fill defaults into a writer's header and validate it."""
    if "codec" not in header or not isinstance(header["codec"], dict):
        raise DumpError(f"{source}: header needs a 'codec' dict with {', '.join(CODEC_KEYS[:-1])}")
    codec = dict(header["codec"])
    codec.setdefault("dtype", DTYPE)
    missing = [k for k in CODEC_KEYS if k not in codec]
    if missing:
        raise DumpError(f"{source}: header 'codec' is missing {missing}")
    if codec["dtype"] != DTYPE:
        raise DumpError(f"{source}: only dtype {DTYPE!r} is supported, got {codec['dtype']!r}")
    cb = int(codec["codebook_size"])
    if not 1 <= cb <= MAX_CODEBOOK_SIZE:
        raise DumpError(f"{source}: codebook_size {cb} does not fit int16 codes "
                        f"(at most {MAX_CODEBOOK_SIZE})")
    if int(codec["n_q"]) < 1:
        raise DumpError(f"{source}: n_q must be >= 1, got {codec['n_q']}")
    codec["sample_rate"] = int(codec["sample_rate"])
    codec["frame_rate"] = float(codec["frame_rate"])
    codec["n_q"] = int(codec["n_q"])
    codec["codebook_size"] = cb
    out = make_header(codec["checkpoint_sha256"], codec["sample_rate"], codec["frame_rate"],
                      codec["n_q"], cb, extra=header.get("extra"))
    out["codec"].update({k: v for k, v in codec.items() if k not in out["codec"]})
    if "created" in header:
        out["created"] = header["created"]
    return out


def _check_header(header: Any, path: PathLike) -> dict:
    """Validate a header read from disk (format name and version)."""
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        fmt = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise DumpError(f"{path}: not an NDVQ code dump header (format {fmt!r}, "
                        f"expected {FORMAT_NAME!r})")
    version = header.get("version")
    if version != FORMAT_VERSION:
        raise DumpError(f"{path}: unsupported code dump version {version!r} "
                        f"(this reader supports {FORMAT_VERSION})")
    if not isinstance(header.get("codec"), dict) or "n_q" not in header["codec"]:
        raise DumpError(f"{path}: header has no 'codec' section with n_q")
    return header


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DumpError(f"{path}: not valid JSON ({e})") from None


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DumpError(f"{path}:{n}: not valid JSON ({e})") from None
    return records


# ------------------------------------------------------------------------------------ planning
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


# --------------------------------------------------------------------------------------- writing
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


class DumpWriter:
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

    @property
    def n_q(self) -> int:
        return int(self.header["codec"]["n_q"])

    @property
    def codebook_size(self) -> int:
        return int(self.header["codec"]["codebook_size"])

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


def _completed_shards(dump_dir: Path) -> set[int]:
    done = set()
    for p in dump_dir.glob("shard-*.index.jsonl"):
        m = _SHARD_RE.match(p.name)
        if m and (dump_dir / shard_name(int(m.group(1)))).exists():
            done.add(int(m.group(1)))
    return done


def _open_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DumpError(f"{path}: shard file missing") from None
    except ValueError as e:
        raise DumpError(f"{path}: not a readable .npy shard ({e})") from None
    if arr.dtype != np.int16:
        raise DumpError(f"{path}: dtype {arr.dtype}, expected int16")
    return arr


# --------------------------------------------------------------------------------------- reading
class CodeDump:
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

    # metadata
    @property
    def n_q(self) -> int:
        return int(self.header["codec"]["n_q"])

    @property
    def codebook_size(self) -> int:
        return int(self.header["codec"]["codebook_size"])

    @property
    def frame_rate(self) -> float:
        return float(self.header["codec"]["frame_rate"])

    @property
    def sample_rate(self) -> int:
        return int(self.header["codec"]["sample_rate"])

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


# ------------------------------------------------------------------------------ Hugging Face export
def export_hf(dump_dir: PathLike, out_dir: PathLike, n_q: Optional[int] = None) -> Path:
    """Write the dump as a Hugging Face dataset with `save_to_disk` (load with `load_from_disk`).

    Columns: id, speaker, text, phonemes (strings, may be None), frames (int32), codes (int16
    nested lists [n_q][T]: `List(List(Value("int16")))`; Array2D cannot have a variable last
    dimension), meta (JSON string of the remaining index fields, e.g. duration, scale).
    """
    try:
        import datasets
    except ImportError:
        raise ImportError("export_hf needs the `datasets` package: pip install 'datasets>=2.14' "
                          "(or pip install 'ndvq[datasets]')") from None
    dump = CodeDump(dump_dir)
    n_q = dump.n_q if n_q is None else int(n_q)
    seq = getattr(datasets, "List", None) or datasets.Sequence
    features = datasets.Features({
        "id": datasets.Value("string"), "speaker": datasets.Value("string"),
        "text": datasets.Value("string"), "phonemes": datasets.Value("string"),
        "frames": datasets.Value("int32"),
        "codes": seq(seq(datasets.Value("int16"))),
        "meta": datasets.Value("string"),
    })
    skip = set(RESERVED_KEYS) | {"speaker", "text", "phonemes"}

    def gen(dump_dir: str, n_q: int):
        d = CodeDump(dump_dir)
        for i in range(len(d)):
            m = d.meta(i)
            yield {"id": m["id"], "speaker": _opt_str(m.get("speaker")),
                   "text": _opt_str(m.get("text")), "phonemes": _opt_str(m.get("phonemes")),
                   "frames": int(m["frames"]), "codes": d.codes(i, n_q),
                   "meta": _dumps({k: v for k, v in m.items() if k not in skip})}

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # a private cache: from_generator's cache is keyed on the function, not the dump's contents
    with tempfile.TemporaryDirectory(prefix=".hf-cache-", dir=out_dir.parent) as cache:
        ds = datasets.Dataset.from_generator(gen, features=features, cache_dir=cache,
                                             gen_kwargs={"dump_dir": str(dump.dir), "n_q": n_q})
        info_header = dict(dump.header)
        info_header["codec"] = dict(info_header["codec"], n_q=n_q)
        ds.info.description = _dumps({"ndvq_code_dump_header": info_header})
        ds.save_to_disk(str(out_dir))
    logger.info("exported %d utterances of %s to %s", len(dump), dump.dir, out_dir)
    return out_dir


def _opt_str(v: Any) -> Optional[str]:
    return None if v is None else str(v)


# -------------------------------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codec.code_dump",
                                     description="Inspect, finalize and export NDVQ code dumps.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info", help="print the header and corpus statistics")
    p.add_argument("dir")
    p = sub.add_parser("finalize", help="merge complete per-shard indexes into index.jsonl")
    p.add_argument("dir")
    p.add_argument("--num-shards", type=int, default=None,
                   help="require shards 0..N-1 to be complete")
    p = sub.add_parser("export-hf", help="export as a Hugging Face dataset (save_to_disk)")
    p.add_argument("dir")
    p.add_argument("out")
    p.add_argument("--n-q", type=int, default=None, help="keep only the first N codebooks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.cmd == "info":
            sys.stdout.write(json.dumps(CodeDump(args.dir).summary(), indent=2) + "\n")
        elif args.cmd == "finalize":
            header = _check_header(_read_json(Path(args.dir) / HEADER_FILE), args.dir)
            n = DumpWriter(args.dir, header).finalize(args.num_shards)
            sys.stdout.write(f"{n} utterances\n")
        elif args.cmd == "export-hf":
            export_hf(args.dir, args.out, n_q=args.n_q)
    except (DumpError, ImportError, FileNotFoundError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    return 0


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "DumpError", "make_header", "plan_shards",
           "ShardWriter", "DumpWriter", "CodeDump", "export_hf", "shard_name", "shard_index_name"]

if __name__ == "__main__":
    sys.exit(main())
