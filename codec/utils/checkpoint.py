"""Training checkpoints and exported models.

Checkpoint layout (one directory per step, written to a temporary directory then renamed, so a crash
never leaves a half checkpoint that `latest_checkpoint` would pick up):

    exp_dir/checkpoints/step-00001000/
        model.safetensors          generator (NDVQCodec state dict, weight-norm parametrizations as is)
        discriminator.safetensors  discriminator
        config.json                the resolved CodecConfig
        state.pt                   optimizers, RNG states, data position, step, counters
                                   (tensors and primitive containers only: torch.load(weights_only=True))

Exported model (`export_codec`, what the inference API reads): `config.json` + `model.safetensors`.
`load_codec` rebuilds an NDVQCodec from those two files alone; no pickled code is executed.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from .config import from_dict, save_config

CHECKPOINT_DIR = "checkpoints"
_STEP_RE = re.compile(r"^step-(\d{8,})$")


# -- RNG states as tensors / primitives ------------------------------------------------------------
def capture_rng_state() -> dict:
    """Python, numpy and torch RNG states in a weights_only-loadable form."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    save_model(model, str(tmp / "model.safetensors"))
    if discriminator is not None:
        save_model(discriminator, str(tmp / "discriminator.safetensors"))
    save_config(config, tmp / "config.json")
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
    load_model(model, str(path / "model.safetensors"), strict=True)
    if discriminator is not None:
        load_model(discriminator, str(path / "discriminator.safetensors"), strict=True)
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


# -- exported models -------------------------------------------------------------------------------
def export_codec(model: nn.Module, out_dir: str | Path) -> Path:
    """Write `config.json` + `model.safetensors` of an NDVQCodec into `out_dir` (atomic)."""
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".tmp-{out_dir.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    save_config(model.config, tmp / "config.json")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.rename(tmp, out_dir)
    return out_dir


def load_codec_config(path: str | Path):
    from ..config import CodecConfig
    data = json.loads((Path(path) / "config.json").read_text())
    return from_dict(CodecConfig, data, str(Path(path) / "config.json"))


def load_codec(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild an NDVQCodec (eval mode) from `path/config.json` + `path/model.safetensors`.

    `path` may be an exported model directory or a training checkpoint directory.
    """
    from ..build import build_codec
    model = build_codec(load_codec_config(path))
    load_model(model, str(Path(path) / "model.safetensors"), strict=True, device=str(device))
    return model.to(device).eval()
