"""The codec's exported model directory: `config.json` (the resolved CodecConfig) + `model.safetensors`.

`load_codec` rebuilds an NDVQCodec from those two files alone (no pickled code runs); it also reads a
training checkpoint directory (core.checkpoint's step directories hold the same two files).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from core.config import from_dict, save_config

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
    from .config import CodecConfig
    data = json.loads((Path(path) / "config.json").read_text())
    return from_dict(CodecConfig, data, str(Path(path) / "config.json"))


def load_codec(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild an NDVQCodec (eval mode) from `path/config.json` + `path/model.safetensors`.

    `path` may be an exported model directory or a training checkpoint directory.
    """
    from .build import build_codec
    model = build_codec(load_codec_config(path))
    load_model(model, str(Path(path) / "model.safetensors"), strict=True, device=str(device))
    return model.to(device).eval()
