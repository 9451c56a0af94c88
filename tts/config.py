"""TTS configs: dataclass defaults that run, YAML files with overrides only (core.config).

ModelConfig defaults are the VALL-E paper's size (12 layers, width 1024, 16 heads, for each of the
AR and NAR); `egs/libritts/conf/tts_mini.yaml` shrinks it for 2 CPU cores. Training configs
(DataConfig, OptimConfig, TrainConfig, TTSConfig) follow the model part in this same file.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from core.trainer import LRSchedule

# How training builds the acoustic prompt (tts/data.py):
#   prefix          - a random prefix of the same utterance (lifeiteng's default; suits short LibriTTS clips)
#   other_utterance - another utterance of the same speaker (the paper's cross-utterance setting)
PromptMode = Literal["prefix", "other_utterance"]
# What the AR's phoneme positions attend to: "prefix_lm" = bidirectional over the phonemes, causal
# over the audio; "causal" = causal everywhere (a plain decoder-only LM).
ARAttention = Literal["prefix_lm", "causal"]
# How the AR knows where it is in the text (tts/models/ar.py):
#   attention - VALL-E: the audio finds its place in the phonemes through attention alone, stops on <eos>
#   durations - every audio frame also receives the embedding of the phoneme it belongs to (a forced
#               alignment in training, a duration predictor at inference); the length is the sum of
#               the durations, so no word can be skipped or repeated.
ARAlignment = Literal["attention", "durations"]
# How the NAR knows which phoneme each frame speaks (tts/models/nar.py):
#   attention - VALL-E: the phonemes are in the sequence, found by attention (at the recipe's budget the
#               NAR never learned to: its text gain was 0, the codebook-1 codes under teacher forcing
#               carry the words)
#   durations - every prompt and target frame also receives its phoneme, frames into it and frames left
#               (the AR's FrameAlignment; prefix prompts only, where prompt + target is one aligned utterance)
NARAlignment = Literal["attention", "durations"]
Part = Literal["ar", "nar"]
# What the NAR learns of the voice besides attending to the prompt (tts/models/nar.py):
#   none   - VALL-E: the prompt's codes are in the sequence, nothing else
#   global - also a learned global voice vector (the prompt's code embeddings averaged over its frames,
#            through a small MLP) added to the stage condition of every adaptive layer norm and to every
#            target frame's input: the voice reaches every layer and frame without having to be found
VoiceConditioning = Literal["none", "global"]


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
    # longest phoneme sequence (prompt text + sentence) the model accepts at inference: a guard, not a
    # parameter size (the data filter's own limit is DataConfig.max_phonemes)
    max_text_tokens: int = 1024
    max_frames: int = 4096          # longest code sequence accepted (prompt + target)
    prompt_mode: PromptMode = "prefix"
    ar_attention: ARAttention = "prefix_lm"
    ar_alignment: ARAlignment = "attention"
    duration_loss_weight: float = 1.0   # durations mode: weight of the log-duration MSE beside the code CE
    voice_conditioning: VoiceConditioning = "none"     # the NAR's global voice vector (see above)
    nar_alignment: NARAlignment = "attention"          # what the NAR's frames know of the text (see above)
    # The NAR adds w_k * log(the prompt's own codebook-k code frequencies) to stage k's logits (w_k learned,
    # one per stage): the count model "code k given code k-1, mixed with the prompt's unigram" beat the
    # NAR at the recipe's budget, so the NAR gets that prompt statistic in closed form (tts/models/nar.py)
    prompt_code_prior: bool = False
    # Token embeddings start at N(0, emb_init_std): at 0.02 they were 50x smaller than the sinusoidal
    # positions (scale 1) and the first layer saw little but position (see tests/tts/test_models.py).
    emb_init_std: float = 1.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"ModelConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.n_q < 1:
            raise ValueError(f"ModelConfig: n_q={self.n_q} must be >= 1")
        if self.nar_alignment == "durations" and self.prompt_mode != "prefix":
            raise ValueError("ModelConfig: nar_alignment='durations' needs prompt_mode='prefix' (the durations "
                             "describe one utterance: prompt + target)")

    # special audio tokens of the AR (after the codec's codes)
    @property
    def eos_id(self) -> int:
        return self.codebook_size

    @property
    def bos_id(self) -> int:
        return self.codebook_size + 1


# --------------------------------------------------------------------------- training
MixedPrecision = Literal["no", "fp16", "bf16"]


@dataclass
class DataConfig:
    """The code dump(s) and how they become batches (tts/data.py)."""
    train_dump: str = "data/codes/train-clean-100"
    valid_dump: Optional[str] = "data/codes/dev-clean"
    frontend_dir: Optional[str] = None      # tokens.txt (+ frontend.json); None: <dump>/../../phonemes
    min_seconds: float = 0.5
    max_seconds: float = 20.0
    max_phonemes: int = 600                 # training utterances with more phoneme tokens are left out
    # Forced-alignment durations (docs/durations.md) for model.ar_alignment = "durations"; None otherwise.
    train_durations: Optional[str] = None
    valid_durations: Optional[str] = None
    # Phonemes-per-second sanity filter on pronounced phones (no stress/punctuation/separators):
    # English read speech is ~8-18 phones/s; far outside means the text cannot match the audio.
    min_pps: float = 2.5
    max_pps: float = 30.0
    # Dynamic batches: padded sequence positions (phonemes + code frames [+ prompt]) per batch.
    max_frames_per_batch: int = 12_000
    max_batch_size: int = 128
    num_buckets: int = 10                   # duration buckets (quantiles of the item cost)
    # Prompts (ModelConfig.prompt_mode): prefix length / other-utterance window, in seconds.
    prompt_min_seconds: float = 1.0
    prompt_max_seconds: float = 3.0
    prompt_max_fraction: float = 0.5        # prefix mode: at most this part of the utterance
    # AR only (needs durations): prepend the last ar_context_seconds (cut at a phoneme boundary) of another
    # utterance of the same speaker, its phonemes and a word separator, as synthesis prepends a whole other
    # utterance as the prompt. Why: trained on single utterances the AR only ever continues a falling
    # (declining) pitch; after a prompt's sentence-final fall it spoke ~1.2 semitones below its prompt. 0: off.
    ar_context_seconds: float = 0.0
    valid_max_utterances: Optional[int] = 200
    # Curriculum: only utterances up to curriculum_max_seconds for the first curriculum_steps (0: off).
    curriculum_steps: int = 0
    curriculum_max_seconds: float = 4.0
    num_workers: int = 1


@dataclass
class OptimConfig:
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.01              # AdamW (decoupled); not applied to norms, biases, embeddings
    warmup_steps: int = 2000
    # DECISION: cosine decay to min_lr_ratio * lr at train.max_steps (a run's length is known:
    # max_steps, or a wall-time budget with a matching step cap); inverse_sqrt for open-ended runs.
    schedule: LRSchedule = "cosine"
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0


@dataclass
class TrainConfig:
    exp_dir: str = "exp/ar"
    seed: int = 1234
    max_steps: int = 300_000
    max_minutes: Optional[float] = None     # wall-time budget: stop (and checkpoint) after this
    log_every: int = 50
    valid_every: int = 2000                 # 0: validate only at the end
    ckpt_every: int = 2000
    keep_last: int = 3
    mixed_precision: MixedPrecision = "no"
    max_bad_steps: int = 20                 # abort after this many non-finite steps in a row


@dataclass
class TTSConfig:
    """Everything `tts.train` needs. `ar` / `nar` hold overrides (same nesting as this config)
    applied when that part is trained, e.g. `ar: {train: {max_minutes: 6}}`; the resolved config
    saved with a model has them applied and empty."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ar: dict[str, Any] = field(default_factory=dict)
    nar: dict[str, Any] = field(default_factory=dict)

    def for_part(self, part: Part) -> "TTSConfig":
        """This config with the part's overrides applied (and both override sections cleared)."""
        from core.config import from_dict
        if part not in ("ar", "nar"):
            raise ValueError(f"part must be 'ar' or 'nar', not {part!r}")
        over = dict(getattr(self, part) or {})
        for k in ("ar", "nar"):
            if k in over:
                raise ValueError(f"{part}: overrides cannot nest another part section ({k!r})")
        base = dataclasses.replace(self, ar={}, nar={})
        return from_dict(TTSConfig, over, f"{part} (part overrides)", base)
