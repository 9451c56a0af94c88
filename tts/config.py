"""TTS configs: dataclass defaults that run, YAML files with overrides only (codec.utils.config).

ModelConfig defaults are the VALL-E paper's size (12 layers, width 1024, 16 heads, for each of the
AR and NAR); `egs/libritts/conf/tts_mini.yaml` shrinks it for 2 CPU cores. Training configs
(DataConfig, OptimConfig, TrainConfig, TTSConfig) follow the model part in this same file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How training builds the acoustic prompt (contracts.md B):
#   prefix          - a random prefix of the same utterance (lifeiteng's default; suits short LibriTTS clips)
#   other_utterance - another utterance of the same speaker (the paper's cross-utterance setting)
PromptMode = Literal["prefix", "other_utterance"]
# What the AR's phoneme positions attend to: "prefix_lm" = bidirectional over the phonemes, causal
# over the audio; "causal" = causal everywhere (a plain decoder-only LM).
ARAttention = Literal["prefix_lm", "causal"]
Part = Literal["ar", "nar"]


@dataclass
class ModelConfig:
    n_layers: int = 12
    d_model: int = 1024
    n_heads: int = 16
    ffn_mult: int = 4               # FFN hidden = ffn_mult * d_model
    dropout: float = 0.1
    vocab_size: int = 144           # phoneme symbols (data_prep's default table has 144; >= len(tokens.txt))
    codebook_size: int = 1024       # codes per codebook of the codec that made the dump
    n_q: int = 8                    # codebooks the TTS models (AR: the first; NAR: 2..n_q)
    max_phonemes: int = 1024        # longest phoneme sequence accepted (a guard, not a parameter size)
    max_frames: int = 4096          # longest code sequence accepted (prompt + target)
    prompt_mode: PromptMode = "prefix"
    ar_attention: ARAttention = "prefix_lm"
    tie_ar_head: bool = False       # True: the AR's output head shares the audio embedding's weights
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"ModelConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.n_q < 1:
            raise ValueError(f"ModelConfig: n_q={self.n_q} must be >= 1")

    # special audio tokens of the AR (after the codec's codes)
    @property
    def eos_id(self) -> int:
        return self.codebook_size

    @property
    def bos_id(self) -> int:
        return self.codebook_size + 1


# --------------------------------------------------------------------------- training (T2 below)
