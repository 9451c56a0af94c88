"""The utterances the aligner reads: ids, audio paths, `phonemes` fields and code frame counts.

From a code dump (the normal path): the index gives id, phonemes and frames; the audio paths come
from the manifests the dump was tokenized from (header `extra.manifests`, relative to the recipe
directory, or `--manifest` files). From a manifest + phonemes file (before a dump exists): frames are
the codec's framing of the resampled audio (features.num_frames).

Features of a whole corpus are computed once into memory (`compute_features`): a mini corpus
(2.6 h) is 470k frames, 150 MB at 80 mels; an optional cache file makes a second run start at once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from core.io import atomic_path, read_jsonl

from .features import FeatureConfig, fit_frames, load_features

log = logging.getLogger(__name__)

__all__ = ["Utterance", "FeatureSet", "dump_utterances", "manifest_utterances", "find_manifests",
           "compute_features"]


@dataclass
class Utterance:
    id: str
    path: str                       # audio file
    phonemes: str                   # the dump's `phonemes` field (space-separated tokens)
    frames: Optional[int] = None    # code frames (None: not from a dump; features decide)
    speaker: Optional[str] = None


def _resolve(p: str, base: Path) -> Optional[Path]:
    """A manifest path as written in a dump header (relative to the recipe dir) -> an existing file."""
    cands = [Path(p)] if Path(p).is_absolute() else [Path(p), *(d / p for d in (base, *base.parents[:3]))]
    return next((c for c in cands if c.is_file()), None)


def find_manifests(dump_dir: str | os.PathLike) -> list[Path]:
    """The manifests a dump was tokenized from (header extra.manifests), resolved to existing files."""
    from codec.code_dump import CodeDump
    dump = CodeDump(dump_dir)
    listed = (dump.header.get("extra") or {}).get("manifests") or []
    out = []
    for m in listed:
        found = _resolve(str(m), Path(dump_dir).resolve())
        if found is None:
            raise FileNotFoundError(f"{dump_dir}: manifest {m} of the dump header not found; pass --manifest")
        out.append(found)
    if not out:
        raise FileNotFoundError(f"{dump_dir}: the dump header names no manifests; pass --manifest")
    return out


def _paths(manifests: Iterable[str | os.PathLike]) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in manifests:
        for r in read_jsonl(m):
            out[str(r["id"])] = str(r["path"])
    return out


def dump_utterances(dump_dir: str | os.PathLike, manifests: Sequence[str | os.PathLike] = ()
                    ) -> tuple[list[Utterance], FeatureConfig, dict]:
    """(utterances with an audio path and phonemes, the feature config of its codec, counts of the others).

    Utterances without phonemes or without an audio path in the manifests are left out and counted.
    """
    from codec.code_dump import CodeDump
    dump = CodeDump(dump_dir)
    paths = _paths(manifests or find_manifests(dump_dir))
    utts, missing = [], {"no_phonemes": 0, "no_audio_path": 0}
    for i in range(len(dump)):
        m = dump.meta(i)
        if not m.get("phonemes"):
            missing["no_phonemes"] += 1
        elif m["id"] not in paths:
            missing["no_audio_path"] += 1
        else:
            utts.append(Utterance(m["id"], paths[m["id"]], m["phonemes"], int(m["frames"]), m.get("speaker")))
    return utts, FeatureConfig.from_dump_header(dump.header), missing


def manifest_utterances(manifest: str | os.PathLike, phonemes: str | os.PathLike) -> list[Utterance]:
    """Utterances of a manifest with their phonemes (frames unknown: the features decide)."""
    ph = {}
    for r in read_jsonl(phonemes):
        p = r.get("phonemes")
        ph[str(r["id"])] = " ".join(p) if isinstance(p, list) else p
    return [Utterance(str(r["id"]), str(r["path"]), ph[str(r["id"])], None, r.get("speaker"))
            for r in read_jsonl(manifest) if ph.get(str(r["id"]))]


@dataclass
class FeatureSet:
    """Features of utterances, concatenated: feats float32 [M, sum T], offsets [N + 1]."""
    ids: list[str]
    feats: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, i: int) -> np.ndarray:
        """[M, T_i] (a view)."""
        return self.feats[:, self.offsets[i]:self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def _one(u: Utterance, cfg: FeatureConfig):
    try:
        f = load_features(u.path, cfg)
        return fit_frames(f, u.frames, u.id) if u.frames is not None else f
    except Exception as e:            # unreadable audio, frame mismatch: reported by the caller
        return e


def _cache_key(utts: Sequence[Utterance], cfg: FeatureConfig) -> str:
    h = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    for u in utts:
        h.update(f"{u.id}\t{u.path}\t{u.frames}\n".encode())
    return h.hexdigest()[:16]


def compute_features(utts: Sequence[Utterance], cfg: FeatureConfig, workers: int = 2,
                     cache: Optional[str | os.PathLike] = None) -> tuple[FeatureSet, dict[str, str]]:
    """(features of the readable utterances in order, {id: error} of the others).

    cache: a .npz file; reused when it holds exactly these utterances with this config.
    """
    key = _cache_key(utts, cfg)
    if cache is not None and Path(cache).is_file():
        z = np.load(cache, allow_pickle=False)
        if str(z["key"]) == key:
            errors = json.loads(str(z["errors"]))
            log.info("features from cache %s", cache)
            return FeatureSet([str(x) for x in z["ids"]], z["feats"], z["offsets"]), errors
    with ThreadPoolExecutor(max(1, workers)) as pool:
        got = list(pool.map(lambda u: _one(u, cfg), utts))
    ids, arrays, errors = [], [], {}
    for u, g in zip(utts, got):
        if isinstance(g, Exception):
            errors[u.id] = str(g)
            log.warning("skipping %s: %s", u.id, g)
        else:
            ids.append(u.id)
            arrays.append(g)
    offsets = np.concatenate([[0], np.cumsum([a.shape[1] for a in arrays])]).astype(np.int64)
    feats = np.concatenate(arrays, axis=1) if arrays else np.zeros((cfg.n_mels, 0), np.float32)
    fs = FeatureSet(ids, np.ascontiguousarray(feats, dtype=np.float32), offsets)
    if cache is not None:
        with atomic_path(cache, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, key=key, ids=np.array(ids), feats=fs.feats, offsets=offsets,
                         errors=json.dumps(errors))
    return fs, errors
