"""Training checkpoints (step directories) and model directories, for every model of the project.

A training checkpoint is one directory per step, written to a temporary directory then renamed, so a
crash never leaves a half checkpoint that `latest_checkpoint` would pick up:

    exp_dir/checkpoints/step-00001000/
        model.safetensors          the model's state dict
        discriminator.safetensors  (the codec) the discriminator
        config.json                the model's record: its resolved config (+ what the model adds)
        state.pt                   optimizers, RNG states, data position, step, counters
                                   (tensors and primitive containers only: torch.load(weights_only=True))

A model directory (`save_model_dir`; what inference reads) holds `config.json` + `model.safetensors`;
each model rebuilds itself from those two files alone (`read_model_config`, then `load_weights`), so
loading executes no pickled code. A checkpoint directory is also a model directory.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from .config import save_config
from .hub import CONFIG_FILE, WEIGHTS_FILE

CHECKPOINT_DIR = "checkpoints"
_STEP_RE = re.compile(r"^step-(\d{8,})$")


# -- training checkpoints --------------------------------------------------------------------------
def checkpoint_dir(exp_dir: str | Path, step: int) -> Path:
    return Path(exp_dir) / CHECKPOINT_DIR / f"step-{step:08d}"


def list_checkpoints(exp_dir: str | Path) -> list[Path]:
    """Complete checkpoints of `exp_dir`, oldest first (temporary directories are ignored)."""
    root = Path(exp_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(exp_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(exp_dir)
    return ckpts[-1] if ckpts else None


def save_checkpoint(exp_dir: str | Path, step: int, model: nn.Module, discriminator: nn.Module | None,
                    config: Any, state: dict, keep_last: int | None = None) -> Path:
    """Write a checkpoint atomically (tmp dir + os.rename); prune to the last `keep_last`. Main process only."""
    final = checkpoint_dir(exp_dir, step)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / WEIGHTS_FILE))
    if discriminator is not None:
        save_model(discriminator, str(tmp / "discriminator.safetensors"))
    save_config(config, tmp / CONFIG_FILE)
    torch.save(state, tmp / "state.pt")
    _fsync_dir(tmp)
    if final.exists():             # re-saving the same step (e.g. stop right after a periodic save)
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    if keep_last:
        for old in list_checkpoints(exp_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path, model: nn.Module, discriminator: nn.Module | None = None) -> dict:
    """Load weights into `model` (and `discriminator`) in place; return the training state dict."""
    path = Path(path)
    for m, name in ((model, WEIGHTS_FILE), (discriminator, "discriminator.safetensors")):
        if m is None:
            continue
        bad = _weights_problem(m, path / name)
        if bad and "{whose}" in bad:
            raise ValueError(f"cannot resume from {path / name}: it {bad.replace('{whose}', 'of this run')}. The "
                             f"model's shape changed since this checkpoint: train in a new exp_dir (or restore the "
                             f"old config)")
        if bad:
            raise ValueError(f"cannot resume from {path / name}: it {bad}")
        load_model(m, str(path / name), strict=True)
    return torch.load(path / "state.pt", map_location="cpu", weights_only=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- model directories -------------------------------------------------------------------------------
def save_model_dir(model: nn.Module, record: Any, out_dir: str | Path) -> Path:
    """Write `config.json` (`record`: a config dataclass or a dict) + `model.safetensors` into `out_dir`,
    atomically (a temporary directory, then a rename: a reader never sees half a model)."""
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


def model_kind(data: dict) -> str:
    """What a model directory's config.json describes, for messages: "an AR model", "a NAR model" (TTS),
    "an aligner model", "a codec", or "an unknown model"."""
    part = data.get("part")
    if part in ("ar", "nar"):
        return f"{'an' if part == 'ar' else 'a'} {part.upper()} model"
    if str(data.get("format", "")).endswith("aligner"):
        return "an aligner model"
    if "quantizer" in data and "seanet" in data:
        return "a codec"
    return "an unknown model"


_KIND_OF = {"codec": "a codec", "aligner model": "an aligner model", "AR model": "an AR model",
            "NAR model": "a NAR model", "TTS model": ("an AR model", "a NAR model")}


def read_model_config(path: str | Path, what: str = "model") -> tuple[dict, Path]:
    """(the parsed config.json, its path) of a model or checkpoint directory (or of the file itself);
    FileNotFoundError in one line if it is not one, ValueError in one line naming the file if config.json is
    not a JSON object or (for a `what` of _KIND_OF) describes another kind of model."""
    path = Path(path)
    file = path if path.is_file() else path / CONFIG_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: {path} is not a {what} directory "
                                f"(expected {CONFIG_FILE} + {WEIGHTS_FILE})")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{file}: not valid JSON ({e}): the {what} directory {path} is damaged") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file}: a JSON object expected, found {type(data).__name__}")
    want, kind = _KIND_OF.get(what), model_kind(data)
    if want is not None and kind not in (want if isinstance(want, tuple) else (want,)) \
            and kind != "an unknown model":
        raise ValueError(f"{file.parent} holds {kind}, not {what if isinstance(want, tuple) else want}: "
                         f"pass the {what} directory here")
    return data, file


def _weights_problem(model: nn.Module, file: Path) -> str | None:
    """Why `file` (safetensors) cannot be loaded into `model`, from its header alone, or None."""
    from safetensors import safe_open
    try:
        with safe_open(str(file), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for a damaged file
        return f"cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'damaged'}; truncated?)"
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, extra = sorted(set(mine) - set(shapes)), sorted(set(shapes) - set(mine))
    other = [k for k in sorted(set(mine) & set(shapes)) if mine[k] != shapes[k]]
    if not (missing or extra or other):
        return None
    parts = [f"{len(missing)} tensor(s) missing (e.g. {missing[0]})" if missing else "",
             f"{len(extra)} unexpected (e.g. {extra[0]})" if extra else "",
             f"{len(other)} of another shape (e.g. {other[0]}: {list(shapes[other[0]])} in the file, "
             f"{list(mine[other[0]])} in the model)" if other else ""]
    return "does not fit the model {whose}: " + ", ".join(p for p in parts if p)


def load_weights(model: nn.Module, path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Load `path/model.safetensors` into `model` (strict: every tensor present, none extra); a damaged file
    or one of other shapes is a ValueError in one line naming the folder."""
    file = Path(path) / WEIGHTS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: {path} is not a model directory (expected "
                                f"{CONFIG_FILE} + {WEIGHTS_FILE})")
    bad = _weights_problem(model, file)
    if bad:
        raise ValueError(f"{file} {bad.replace('{whose}', 'its config describes')}")
    try:
        load_model(model, str(file), strict=True, device=str(device))
    except Exception as e:  # noqa: BLE001 - a header that reads but data that does not (truncated)
        raise ValueError(f"{file} cannot be read ({type(e).__name__}: {str(e).splitlines()[0]}; truncated?)") from None
    return model
