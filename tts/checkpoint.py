"""TTS model directories and training checkpoints.

An exported model directory (what synthesis reads; `tts.train` writes exp/<part>/model):

    config.json         the resolved TTSConfig, plus
                        "part": "ar" | "nar",
                        "codec_sha256": the code dump's header codec.checkpoint_sha256,
                        "codec": {sample_rate, frame_rate, n_q, codebook_size} (of the dump),
                        "frontend": the text front end's settings + fingerprint (data_prep/frontend.py)
    model.safetensors   the model's state dict

Training checkpoints (exp/<part>/checkpoints/step-XXXXXXXX/) are core.checkpoint's atomic step
directories holding the same config.json and model.safetensors plus state.pt (optimizer, RNG states,
counters; torch.load(weights_only=True)), so `load_tts_model` reads either kind of directory.

A model trained on one codec's codes is meaningless with another codec: `check_codec` raises
`CodecMismatch` naming both checkpoint hashes.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from core.checkpoint import load_weights, read_model_config, save_model_dir
from core.config import from_dict, to_dict

from .config import Part, TTSConfig

log = logging.getLogger(__name__)

_CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(TTSConfig))
META_KEYS = ("part", "codec_sha256", "codec", "frontend")
# Config keys a saved model may still hold though the option is gone ({section: keys}); dropped on load
# (each did nothing at the value this repo ever saved: tie_ar_head was always false).
REMOVED_KEYS = {"model": ("tie_ar_head",)}
# Config keys renamed since ({section: {old: new}}), read under their new name.
RENAMED_KEYS = {"model": {"max_phonemes": "max_text_tokens"}}


class CodecMismatch(ValueError):
    """A TTS model used with codes (or a codec) other than those it was trained on."""


@dataclass
class LoadedTTS:
    model: nn.Module            # eval mode
    config: TTSConfig
    part: Part
    meta: dict                  # codec_sha256, codec, frontend (and anything else config.json holds)


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


def check_frontend(meta: dict, frontend, what: str = "this TTS model") -> None:
    """Raise FrontendMismatch (a ValueError) if `meta`'s text front end would give other ids than
    `frontend` (a data_prep.frontend.TextFrontend); ValueError if `meta` records no versioned front end."""
    theirs = meta.get("frontend") or {}
    if "fingerprint" not in theirs:
        raise ValueError(f"{what} records no versioned text front end (settings + fingerprint in its "
                         f"config.json 'frontend'): it was not trained by this version; train it again")
    frontend.check_compatible(theirs, what)


def export_tts_model(model: nn.Module, record: dict, out_dir: str | os.PathLike) -> Path:
    """Write config.json (`record`) + model.safetensors into `out_dir` atomically (core.checkpoint)."""
    return save_model_dir(model, record, out_dir)


def _upgrade(data: dict, file: Path) -> dict:
    """`data` with the keys of removed options dropped and renamed keys under their new name (logged)."""
    for section, keys in REMOVED_KEYS.items():
        sub = data.get(section)
        for k in keys:
            if isinstance(sub, dict) and k in sub:
                log.info("%s: %s.%s is no longer an option; ignored", file, section, k)
                sub.pop(k)
    for section, names in RENAMED_KEYS.items():
        sub = data.get(section)
        for old, new in names.items():
            if isinstance(sub, dict) and old in sub and new not in sub:
                log.info("%s: %s.%s is now %s.%s", file, section, old, section, new)
                sub[new] = sub.pop(old)
    return data


def read_record(path: str | os.PathLike) -> tuple[TTSConfig, Part, dict]:
    """(config, part, meta) of a model or checkpoint directory (or its config.json)."""
    data, file = read_model_config(path, "TTS model")
    part = data.get("part")
    if part not in ("ar", "nar"):
        from core.checkpoint import model_kind
        raise ValueError(f"{file.parent} holds {model_kind(data)} (config.json 'part' is {part!r}), not a TTS AR "
                         f"or NAR model")
    data = _upgrade(data, file)
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
    model = load_weights(build_model(cfg.model, part), path, device)
    return LoadedTTS(model=model.to(device).eval(), config=cfg, part=part, meta=meta)


def default_exp_dir() -> Path:
    """Where synthesis and the demo look for EXP/{codec,ar,nar}/model by default: ./exp when it holds a
    codec (run from egs/libritts), else the recipe's egs/libritts/exp of this checkout."""
    here = Path("exp")
    if (here / "codec" / "model").is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "egs" / "libritts" / "exp"


def frontend_record(phonemes_dir: str | os.PathLike):
    """(TextFrontend, its record for config.json) of the front end saved in `phonemes_dir`."""
    from data_prep.frontend import TextFrontend
    fe = TextFrontend.load(phonemes_dir)
    return fe, fe.to_dict()


__all__ = ["CodecMismatch", "LoadedTTS", "load_tts_model", "check_codec", "check_frontend", "export_tts_model",
           "read_record", "model_record", "frontend_record", "default_exp_dir", "META_KEYS", "REMOVED_KEYS", "RENAMED_KEYS"]
