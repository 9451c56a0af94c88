"""TTS model directories and training checkpoints (contracts.md C).

An exported model directory (what synthesis reads; `tts.train` writes exp/<part>/model):

    config.json         the resolved TTSConfig, plus
                        "part": "ar" | "nar",
                        "codec_sha256": the code dump's header codec.checkpoint_sha256,
                        "codec": {sample_rate, frame_rate, n_q, codebook_size} (of the dump),
                        "frontend": the text front end's settings + fingerprint (contract A), or
                                    {"tokens_sha256": ...} for a phonemes directory without frontend.json
    model.safetensors   the model's state dict

Training checkpoints (exp/<part>/checkpoints/step-XXXXXXXX/) are core.checkpoint's atomic step
directories holding the same config.json and model.safetensors plus state.pt (optimizer, RNG states,
counters; torch.load(weights_only=True)), so `load_tts_model` reads either kind of directory.

A model trained on one codec's codes is meaningless with another codec: `check_codec` raises
`CodecMismatch` naming both checkpoint hashes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from core.config import from_dict, save_config, to_dict

from .config import Part, TTSConfig

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(TTSConfig))
META_KEYS = ("part", "codec_sha256", "codec", "frontend")


class CodecMismatch(ValueError):
    """A TTS model used with codes (or a codec) other than those it was trained on."""


@dataclass
class LoadedTTS:
    model: nn.Module            # eval mode
    config: TTSConfig
    part: Part
    meta: dict                  # codec_sha256, codec, frontend (and anything else config.json holds)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_record(cfg: TTSConfig, part: Part, dump_header: dict, frontend: dict) -> dict:
    """The config.json of a TTS model: resolved config + part + codec identity + front end."""
    codec = dump_header["codec"]
    return {**to_dict(cfg), "part": part, "codec_sha256": str(codec["checkpoint_sha256"]),
            "codec": {k: codec[k] for k in ("sample_rate", "frame_rate", "n_q", "codebook_size")},
            "frontend": frontend}


def check_codec(meta: dict, codec_sha256: str, what: str = "this TTS model") -> None:
    """Raise CodecMismatch unless `meta` (a model's config.json / meta) was trained on `codec_sha256`."""
    mine = meta.get("codec_sha256")
    if mine is None:
        raise CodecMismatch(f"{what} records no codec_sha256: cannot tell which codec it was trained on")
    if str(mine) != str(codec_sha256):
        raise CodecMismatch(f"{what} was trained on codes of codec checkpoint_sha256 {mine}, but the codec "
                            f"here has checkpoint_sha256 {codec_sha256}: use the codec (and code dump) "
                            f"the model was trained with, or train a new model")


def check_frontend(meta: dict, frontend: Any, what: str = "this TTS model") -> None:
    """Raise (FrontendMismatch, a ValueError) if `meta`'s text front end would give other ids than
    `frontend` (the encoder `frontend_record` returns)."""
    theirs = meta.get("frontend") or {}
    if hasattr(frontend, "check_compatible") and "tokens_sha256" not in theirs:
        frontend.check_compatible(theirs, what)
        return
    mine = frontend.record if hasattr(frontend, "record") else frontend.to_dict()
    a, b = theirs.get("tokens_sha256", theirs.get("fingerprint")), mine.get("tokens_sha256", mine.get("fingerprint"))
    if a != b:
        raise ValueError(f"the text front end of {what} ({a}) differs from this one ({b}): "
                         f"phoneme ids would not match")


def export_tts_model(model: nn.Module, record: dict, out_dir: str | os.PathLike) -> Path:
    """Write config.json + model.safetensors into `out_dir` atomically (tmp dir + rename)."""
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".tmp-{out_dir.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / WEIGHTS_FILE))
    save_config(record, tmp / CONFIG_FILE)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.rename(tmp, out_dir)
    return out_dir


def read_record(path: str | os.PathLike) -> tuple[TTSConfig, Part, dict]:
    """(config, part, meta) of a model or checkpoint directory (or its config.json)."""
    path = Path(path)
    file = path if path.is_file() else path / CONFIG_FILE
    if not file.exists():
        raise FileNotFoundError(f"{file} not found: not a TTS model directory")
    data = json.loads(file.read_text())
    part = data.get("part")
    if part not in ("ar", "nar"):
        raise ValueError(f"{file}: 'part' must be 'ar' or 'nar', got {part!r}")
    cfg = from_dict(TTSConfig, {k: v for k, v in data.items() if k in _CONFIG_KEYS}, str(file))
    meta = {k: v for k, v in data.items() if k not in _CONFIG_KEYS}
    return cfg, part, meta


def load_tts_model(path: str | os.PathLike, device: str | torch.device = "cpu",
                   codec_sha256: Optional[str] = None) -> LoadedTTS:
    """Rebuild a TTS model (eval mode) from `path/config.json` + `path/model.safetensors`.

    With `codec_sha256`, the model must have been trained on that codec's codes (CodecMismatch).
    """
    from .build import build_model
    cfg, part, meta = read_record(path)
    if codec_sha256 is not None:
        check_codec(meta, codec_sha256, f"TTS model {path}")
    model = build_model(cfg.model, part)
    load_model(model, str(Path(path) / WEIGHTS_FILE), strict=True, device=str(device))
    return LoadedTTS(model=model.to(device).eval(), config=cfg, part=part, meta=meta)


def frontend_record(phonemes_dir: str | os.PathLike) -> tuple[Any, dict]:
    """(encoder with .tokens_to_ids, record for config.json) of the front end in `phonemes_dir`.

    Uses data_prep.frontend.TextFrontend (contract A) when available; otherwise the bare symbol table
    of tokens.txt, recorded by its sha256.
    """
    d = Path(phonemes_dir)
    try:
        from data_prep.frontend import TextFrontend
    except ImportError:                                   # before the versioned front end existed
        from data_prep.phonemes import SymbolTable
        tokens = d / "tokens.txt"
        if not tokens.exists():
            raise FileNotFoundError(f"{tokens} not found: not a phonemes directory (run the phonemes stage)")
        table = SymbolTable.load(tokens)
        enc = _TableEncoder(table, {"tokens_sha256": sha256_file(tokens), "num_symbols": len(table)})
        return enc, enc.record
    fe = TextFrontend.load(d)
    return fe, fe.to_dict()


class _TableEncoder:
    def __init__(self, table, record: dict) -> None:
        self.symbols, self.record = table, record

    def tokens_to_ids(self, phoneme_string: str) -> list[int]:
        return self.symbols.encode(phoneme_string.split(), on_unknown="unk")


__all__ = ["CodecMismatch", "LoadedTTS", "load_tts_model", "check_codec", "check_frontend", "export_tts_model",
           "read_record", "model_record", "frontend_record", "sha256_file", "META_KEYS"]
