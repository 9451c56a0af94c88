"""What a TTS model's training forward returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import torch


@dataclass
class TTSOutput:
    loss: torch.Tensor                                   # scalar, mean cross-entropy over scored tokens
    metrics: dict[str, Union[float, torch.Tensor]] = field(default_factory=dict)   # detached
    logits: Optional[torch.Tensor] = None                # [N, V] scored positions only (when asked)


__all__ = ["TTSOutput"]
