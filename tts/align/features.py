"""Log-mel features framed exactly like the codec: one feature frame per code frame.

The codec (codec.api.Codec.encode) reads audio resampled to its sample rate with
`data_prep.audio.load_audio` (soxr 'HQ') and gives an utterance of N samples ceil(N / hop) frames,
hop = sample_rate / frame_rate (16 kHz / 50 Hz -> 320 samples); frame t covers samples
[t * hop, (t + 1) * hop). `log_mel` gives the same count, frame t being an `n_fft` window centred on
the middle of that span (zero padding outside the signal), so feature frame t and code frame t
describe the same 20 ms.

    cfg = FeatureConfig(sample_rate=16000, frame_rate=50.0)     # or FeatureConfig.from_dump_header(h)
    feats = load_features("x.wav", cfg)                          # float32 [n_mels, ceil(N / hop)]
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from codec.models.spectral import mel_filterbank

log = logging.getLogger(__name__)

__all__ = ["FeatureConfig", "num_frames", "log_mel", "load_features", "fit_frames"]


@dataclass
class FeatureConfig:
    sample_rate: int = 16_000
    frame_rate: float = 50.0        # the code dump's header codec.frame_rate
    n_mels: int = 80
    n_fft: int = 512                # window = n_fft (hann)
    f_min: float = 20.0
    f_max: float | None = None      # None: sample_rate / 2
    floor: float = 1e-5             # log(max(mel, floor)), natural log

    @property
    def hop(self) -> int:
        hop = self.sample_rate / self.frame_rate
        if abs(hop - round(hop)) > 1e-6:
            raise ValueError(f"sample_rate {self.sample_rate} / frame_rate {self.frame_rate} is not a whole "
                             f"number of samples: no frame grid shared with the codec")
        return int(round(hop))

    @classmethod
    def from_dump_header(cls, header: dict, **kw: Any) -> "FeatureConfig":
        """The codec's sample and frame rate from a code dump's header.json (docs/code_dump.md)."""
        c = header["codec"]
        return cls(sample_rate=int(c["sample_rate"]), frame_rate=float(c["frame_rate"]), **kw)


def num_frames(num_samples: int, hop: int) -> int:
    """Code frames of `num_samples` samples: ceil(N / hop), as codec.api.Codec.encode counts them."""
    return -(-int(num_samples) // hop)


def log_mel(wav: np.ndarray | torch.Tensor, cfg: FeatureConfig) -> np.ndarray:
    """Mono audio [N] at cfg.sample_rate -> float32 log-mels [n_mels, ceil(N / hop)]."""
    x = torch.as_tensor(np.asarray(wav, dtype=np.float32)).flatten()
    hop, n_fft = cfg.hop, cfg.n_fft
    frames = num_frames(x.numel(), hop)
    if frames == 0:
        return np.zeros((cfg.n_mels, 0), np.float32)
    left = n_fft // 2 - hop // 2                     # window of frame t centred on t * hop + hop / 2
    total = (frames - 1) * hop + n_fft
    right = total - left - x.numel()
    if left < 0:
        raise ValueError(f"n_fft {n_fft} is shorter than the hop {hop}")
    x = torch.nn.functional.pad(x, (left, max(0, right)))[:total]
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=False, return_complex=True).abs()
    fb = mel_filterbank(cfg.sample_rate, n_fft, cfg.n_mels, cfg.f_min, cfg.f_max)
    mel = fb @ spec                                   # [n_mels, frames]
    assert mel.shape[1] == frames, (mel.shape, frames)
    return torch.log(mel.clamp_min(cfg.floor)).numpy()


def load_features(path: str, cfg: FeatureConfig) -> np.ndarray:
    """Log-mels [n_mels, T] of an audio file, loaded and resampled as the codec's tokenizer does."""
    from data_prep.audio import load_audio
    wav, _ = load_audio(path, sample_rate=cfg.sample_rate)
    return log_mel(wav, cfg)


def fit_frames(feats: np.ndarray, frames: int, what: str = "utterance", tolerance: int = 1) -> np.ndarray:
    """Features [M, T'] padded (repeat the last frame) or trimmed to `frames`; |T' - frames| above
    `tolerance` is a ValueError (the audio is not the audio the codes were made from)."""
    have = feats.shape[1]
    if abs(have - frames) > tolerance:
        raise ValueError(f"{what}: {have} feature frames but the dump has {frames} code frames")
    if have > frames:
        return feats[:, :frames]
    if have < frames:
        last = feats[:, -1:] if have else np.zeros((feats.shape[0], 1), feats.dtype)
        return np.concatenate([feats, np.repeat(last, frames - have, axis=1)], axis=1)
    return feats
