"""The code dump's on-disk format: constants, file names, the header, and the checks every reader and
writer shares (docs/code_dump.md is the specification).

    header.json                  format, version, codec info (checkpoint sha256, sample_rate,
                                 frame_rate, n_q, codebook_size, dtype "int16"), created, extra
    plan.json                    (optional) the utterance ids of every shard, for resumable jobs
    shard-00000.npy              int16 [frames_in_shard, n_q], utterances concatenated along time
    shard-00000.index.jsonl      one JSON line per utterance of the shard; written LAST, so its
                                 presence means the shard is complete
    index.jsonl                  all per-shard indexes merged (sorted by shard, then offset)
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from core.io import atomic_path

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


class HeaderFields:
    """The codec facts of a dump's header (`self.header["codec"]`), for the reader and the writer."""
    header: dict

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
