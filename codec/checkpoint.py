"""The codec's exported model directory: `config.json` (the resolved CodecConfig) + `model.safetensors`.

`load_codec` rebuilds an NDVQCodec from those two files alone (no pickled code runs); it also reads a
training checkpoint directory (core.checkpoint's step directories hold the same two files). The
directory format itself is core.checkpoint's model directory, shared by every model of the project.
"""
from __future__ import annotations

from pathlib import Path

import torch

from core.checkpoint import load_weights, read_model_config, save_model_dir
from core.config import from_dict

from .build import build_codec
from .config import CodecConfig
from .models.ndvq_codec import NDVQCodec


def export_codec(model: NDVQCodec, out_dir: str | Path) -> Path:
    """Write `config.json` + `model.safetensors` of an NDVQCodec into `out_dir` (atomic)."""
    return save_model_dir(model, model.config, out_dir)


def load_codec_config(path: str | Path) -> CodecConfig:
    """The CodecConfig of a codec model or checkpoint directory (FileNotFoundError in one line if not one)."""
    data, file = read_model_config(path, "codec")
    return from_dict(CodecConfig, data, str(file))


def load_codec(path: str | Path, device: str | torch.device = "cpu") -> NDVQCodec:
    """Rebuild an NDVQCodec (eval mode) from `path/config.json` + `path/model.safetensors`.

    `path` may be an exported model directory or a training checkpoint directory.
    """
    model = build_codec(load_codec_config(path))
    load_weights(model, path, device)
    return model.to(device).eval()
