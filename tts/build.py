"""build_model(cfg, part): the one place that maps a ModelConfig and a part name to a module."""
from __future__ import annotations

import logging
from typing import get_args

import torch.nn as nn

from .config import ModelConfig, Part
from .models import ARModel, NARModel

logger = logging.getLogger(__name__)


def build_model(cfg: ModelConfig, part: Part) -> nn.Module:
    """part "ar" -> ARModel, "nar" -> NARModel (ValueError naming the choices otherwise)."""
    if part == "ar":
        model: nn.Module = ARModel(cfg)
    elif part == "nar":
        model = NARModel(cfg)
    else:
        raise ValueError(f"unknown TTS model part {part!r} (expected one of {list(get_args(Part))})")
    n = sum(p.numel() for p in model.parameters())
    logger.info("built %s model: %d layers, width %d, %d heads, %.1f M parameters",
                part.upper(), cfg.n_layers, cfg.d_model, cfg.n_heads, n / 1e6)
    return model


__all__ = ["build_model"]
