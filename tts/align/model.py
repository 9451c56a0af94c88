"""The CTC phoneme recognizer: log-mels [B, M, T] -> log-probs [B, T, n_phones + 1] (blank = 0).

Per-utterance normalisation (each mel band to zero mean, unit variance over the utterance's valid
frames: level and channel differences of an unseen voice are gone before the first layer), a conv
front end, residual depthwise-separable conv blocks (ConvNeXt-style, 1-D), an optional bidirectional
GRU, and a linear head. No downsampling: one output per code frame, which is what the aligner needs.
About 2 M parameters at the defaults; padded frames never change a valid frame's output (the conv
stack is re-masked after every block and the GRU runs on packed sequences).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .phones import default_phones

__all__ = ["RecognizerConfig", "CTCRecognizer", "length_mask"]


@dataclass
class RecognizerConfig:
    n_mels: int = 80
    phones: tuple[str, ...] = field(default_factory=default_phones)   # label k >= 1 is phones[k - 1]
    # What the TTS needs is boundaries, not the lowest PER. Measured on the mini corpus (3-minute budget, 2
    # cores; boundary error of phone starts against espeak-ng's own timings on dev, `tts.align.boundaries`):
    #   128 channels, subsample 2: dev PER 0.21, median 24 ms, 43 % within 20 ms -> TTS PER 0.70-0.72
    #   256 channels, subsample 1: dev PER 0.22, median 14.5 ms, 62 % within 20 ms
    # (an AR trained on durations with an 18 ms median read the test sentences at PER 0.63 against
    # 0.70-0.72 with the 24 ms ones, same NAR, codec and items): so full rate and 256 channels.
    channels: int = 256
    n_blocks: int = 6
    kernel_size: int = 5
    expansion: int = 2
    gru_hidden: int = 0             # per direction; 0: no GRU (conv only)
    subsample: int = 1              # trunk frames per output frame: 2 runs the trunk at half the frame
                                    # rate and the head emits 2 frames per trunk frame (about 2x faster,
                                    # coarser boundaries: see above)
    dropout: float = 0.1
    freq_masks: int = 2             # training only: SpecAugment-style mel band masks ...
    freq_mask_width: int = 8        # ... each up to this many bands wide (0 masks: off)

    @property
    def num_labels(self) -> int:
        return len(self.phones) + 1


def length_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """[B] -> bool [B, T], True on valid frames."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


class _Block(nn.Module):
    """x + FFN(LN(depthwise conv(x))), on [B, C, T]."""

    def __init__(self, c: int, k: int, expansion: int, dropout: float) -> None:
        super().__init__()
        self.dw = nn.Conv1d(c, c, k, padding=k // 2, groups=c)
        self.norm = nn.LayerNorm(c)
        self.up = nn.Linear(c, expansion * c)
        self.down = nn.Linear(expansion * c, c)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dw(x).transpose(1, 2))
        y = self.drop(self.down(nn.functional.gelu(self.up(y))))
        return x + y.transpose(1, 2)


class CTCRecognizer(nn.Module):
    def __init__(self, cfg: RecognizerConfig) -> None:
        super().__init__()
        self.config = cfg
        c = cfg.channels
        if cfg.subsample < 1:
            raise ValueError(f"subsample must be >= 1, got {cfg.subsample}")
        self.front = nn.Conv1d(cfg.n_mels, c, max(cfg.kernel_size, cfg.subsample), stride=cfg.subsample,
                               padding=max(cfg.kernel_size, cfg.subsample) // 2)
        self.blocks = nn.ModuleList(_Block(c, cfg.kernel_size, cfg.expansion, cfg.dropout)
                                    for _ in range(cfg.n_blocks))
        self.gru = (nn.GRU(c, cfg.gru_hidden, batch_first=True, bidirectional=True)
                    if cfg.gru_hidden > 0 else None)
        self.head = nn.Linear(2 * cfg.gru_hidden if self.gru is not None else c, cfg.num_labels * cfg.subsample)

    @staticmethod
    def normalize(feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Each band of each utterance to zero mean / unit variance over its valid frames. [B, M, T]"""
        m = mask[:, None, :].to(feats.dtype)
        n = m.sum(-1, keepdim=True).clamp_min(1.0)
        mean = (feats * m).sum(-1, keepdim=True) / n
        var = (((feats - mean) * m) ** 2).sum(-1, keepdim=True) / n
        return (feats - mean) / torch.sqrt(var + 1e-4) * m

    def _freq_mask(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if not self.training or cfg.freq_masks <= 0 or cfg.freq_mask_width <= 0:
            return x
        B, M, _ = x.shape
        keep = torch.ones(B, M, 1, device=x.device, dtype=x.dtype)
        bands = torch.arange(M, device=x.device)[None, :]
        for _ in range(cfg.freq_masks):
            w = torch.randint(0, cfg.freq_mask_width + 1, (B, 1), device=x.device)
            f0 = (torch.rand(B, 1, device=x.device) * (M - w + 1)).long()
            keep = keep * (~((bands >= f0) & (bands < f0 + w)))[:, :, None].to(x.dtype)
        return x * keep

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats float [B, M, T] (log-mels), lengths int [B] -> log-probs float [B, T, num_labels]."""
        B, _, T = feats.shape
        mask = length_mask(lengths.to(feats.device), T)
        fm = mask[:, None, :].to(feats.dtype)
        x = self._freq_mask(self.normalize(feats, mask))
        r = self.config.subsample
        if r > 1:                                       # trunk at T / r frames
            x = nn.functional.pad(x, (0, (-T) % r))
            lengths = (lengths + r - 1) // r
            fm = length_mask(lengths.to(feats.device), x.shape[-1] // r)[:, None, :].to(feats.dtype)
        x = self.front(x)[..., :fm.shape[-1]] * fm
        for blk in self.blocks:
            x = blk(x) * fm
        x = x.transpose(1, 2)                           # [B, T, C]
        if self.gru is not None:
            packed = pack_padded_sequence(x, lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False)
            x, _ = self.gru(packed)
            x, _ = pad_packed_sequence(x, batch_first=True, total_length=fm.shape[-1])
        y = self.head(x)                                # [B, T / r, r * V]
        if r > 1:
            y = y.reshape(B, -1, self.config.num_labels)[:, :T]
        return torch.log_softmax(y.float(), dim=-1)
