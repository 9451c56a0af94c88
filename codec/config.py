"""Every setting of the codec, as dataclass defaults that run as they are.

The defaults are the paper's model (Niu et al., SLT 2024: 24 kHz, SEANet 32..512 channels, strides
2, 4, 5, 8 -> 75 frames/s, 32 stages of 1024 codes x 128 dims). YAML files under
`egs/libritts/conf/` hold only overrides: `codec_paper.yaml` (the spec's schedule) and
`codec_mini.yaml` (a small model that learns something on 2 CPU cores in about ten minutes).

Decisions where the spec is silent or contradictory are marked DECISION and repeated in the README.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Optional

from core.trainer import LRSchedule

QuantizerKind = Literal["ndvq", "rvq"]
LogvarInit = Literal["zero", "kmeans", "kmeans_per_code"]
PenaltyReduction = Literal["sum", "mean"]
NormKind = Literal["weight_norm", "none"]
MelFilterbank = Literal["htk", "slaney"]
DecoderKind = Literal["seanet", "istft"]
EncoderKind = Literal["seanet", "stft"]
ResidualFrom = Literal["sample", "mean"]
PhaseWeighting = Literal["none", "magnitude"]
SourceKind = Literal["none", "harmonic"]
AperiodicPhase = Literal["head", "noise"]


@dataclass
class PitchConfig:
    """The iSTFT head's harmonic source (codec/models/harmonic.py): F0 and voicing outputs, and voiced frames
    rendered as the STFT of an F0-driven sine bank times the head's magnitude. "none": the plain head."""
    source: SourceKind = "none"
    bins: int = 128                 # F0 classes, log-spaced
    f0_min: float = 40.0            # Hz, the first class's centre
    f0_max: float = 600.0           # Hz, the last class's centre
    target_sigma: float = 1.0       # width (bins) of the Gaussian training targets around the tracker's F0
    # Voiced frames add an aperiodic part: the head's magnitude x a learned share per bin, with the head's
    # phase (voiced speech is not purely periodic; a comb alone silences the bins between harmonics).
    aperiodic: bool = True
    # The aperiodic part's phase: the head's own ("head"), or a fixed pseudo-random phase per (frame, bin)
    # ("noise": noise cannot add up to a frame-rate buzz the way a learned absolute phase does).
    aperiodic_phase: AperiodicPhase = "head"
    # Training renders voiced frames with the tracker's F0 and voicing (data.train_f0), as the duration
    # model of a TTS is teacher-forced; inference uses the head's own. False: its own in training too.
    teacher_forcing: bool = True


@dataclass
class ISTFTConfig:
    """The inverse-STFT decoder head (codec/models/istft_decoder.py), used when `seanet.decoder` is "istft"."""
    width: int = 256                # channels of every layer at the frame rate
    n_blocks: int = 8               # ConvNeXt blocks
    mlp_ratio: float = 3.0          # ConvNeXt MLP hidden = mlp_ratio * width
    kernel_size: int = 7            # depthwise conv of each block
    pre_kernel_size: int = 7        # the latent -> width conv
    layer_scale: float = 0.0        # initial residual-branch scale; 0 means 1 / n_blocks
    # Sub-frames per latent frame: the head writes `upsample` STFT frames per code frame, at hop
    # hop / upsample (the frame rate of the codes does not change). 1 = one 4-hop window per code frame
    # (80 ms windows at 16 kHz / 50 Hz); 2 = Vocos-like 10 ms hop and 40 ms windows for the same cost.
    upsample: int = 1
    n_fft: int = 0                  # 0 means 4 * (hop / upsample)
    pitch: PitchConfig = field(default_factory=PitchConfig)


@dataclass
class STFTEncoderConfig:
    """The spectral encoder (codec/models/stft_encoder.py), used when `seanet.encoder` is "stft"."""
    width: int = 256                # channels of every layer after the STFT
    upsample: int = 2               # STFT frames per code frame (hop / upsample: 10 ms at 16 kHz / 50 Hz)
    n_fft: int = 0                  # 0 means 4 * (hop / upsample)
    sub_blocks: int = 2             # ConvNeXt blocks at the STFT frame rate
    frame_blocks: int = 4           # ConvNeXt blocks at the code frame rate
    mlp_ratio: float = 3.0
    kernel_size: int = 7


@dataclass
class SEANetConfig:
    """EnCodec's SEANet encoder/decoder."""
    channels: int = 1
    dimension: int = 128            # latent size D
    n_filters: int = 32             # first conv's channels; doubles at each down-sampling block
    n_residual_layers: int = 1
    ratios: tuple[int, ...] = (8, 5, 4, 2)   # decoder order; the encoder uses them reversed (2, 4, 5, 8)
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    compress: int = 2               # residual unit hidden = C / compress
    lstm_layers: int = 2            # 0 disables the LSTM
    causal: bool = False            # DECISION: non-causal default (the paper); causal is an option
    norm: NormKind = "weight_norm"
    pad_mode: str = "reflect"       # non-causal padding; causal mode pads on the left with this mode too
    # "seanet": the paper's decoder (mirror of the encoder). "istft": a frame-rate ConvNeXt + inverse
    # STFT head (codec/models/istft_decoder.py), an option for the mini model (README.md); same hop, codes, length.
    decoder: DecoderKind = "seanet"
    istft: ISTFTConfig = field(default_factory=ISTFTConfig)
    # "seanet": the paper's encoder. "stft": a log-magnitude STFT + ConvNeXt encoder
    # (codec/models/stft_encoder.py), an option for the mini model (README.md); same hop, latent and codes layout.
    encoder: EncoderKind = "seanet"
    stft_encoder: STFTEncoderConfig = field(default_factory=STFTEncoderConfig)

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)


@dataclass
class QuantizerConfig:
    kind: QuantizerKind = "ndvq"
    dimension: int = 128
    codebook_size: int = 1024
    n_q: int = 32                   # maximum number of stages (24 kbps at 75 Hz x 10 bits)
    kmeans_iters: int = 50
    # NDVQ ------------------------------------------------------------------------------------------
    # DECISION: "kmeans" starts every code's log-variance at the within-cluster variance of the k-means
    # init, pooled over clusters per dimension (the spec's measured fix for collapse at small scale);
    # "kmeans_per_code" uses each cluster's own variance (with ~2 points a cluster it hits the floor, and
    # the log-determinant, up to 0.5*D*9 nats, then outweighs the distance in selection, README.md);
    # "zero" is the authors' code (sigma = 1 whatever the latent's scale).
    logvar_init: LogvarInit = "kmeans"
    codebook_weight: float = 0.25   # weight of mse(z.detach(), mu)
    sigma_penalty: float = 1e-5     # weight of sum((sigma^2)^2) over selected entries
    # DECISION: "sum" is the authors' (scales with batch size); "mean" divides by the number of
    # selected entries x dims. We keep the authors' sum by default.
    sigma_penalty_reduction: PenaltyReduction = "sum"
    sample_weight: float = 0.0      # the spec's ablation: 0.25 * mse(zq_sample, z.detach()) gives logvar a gradient
    # The authors had none; True re-seeds codes whose usage (an EMA over steps of the per-step counts,
    # summed over ranks; decay `ema_decay`) falls below `dead_code_threshold`, like the RVQ baseline.
    ndvq_dead_code_reset: bool = False
    # What training subtracts to form the next stage's residual (NDVQ): the spec's reparameterised
    # "sample", or the code's "mean" as at inference (the decoder still gets the sample). With "sample"
    # every later stage trains on residuals carrying the earlier stages' sigma-sized noise, which
    # inference never shows it. A departure to measure (docs/ablation.md), off by default.
    ndvq_residual: ResidualFrom = "sample"
    # RVQ baseline ----------------------------------------------------------------------------------
    ema_decay: float = 0.99
    # A code is dead when its EMA usage (expected uses per step) is below this. EnCodec's 2.0 assumes
    # batches of many vectors per code; the mini config lowers it (see codec_mini.yaml).
    dead_code_threshold: float = 2.0
    commitment_weight: float = 1.0
    epsilon: float = 1e-5


@dataclass
class DiscriminatorConfig:
    filters: int = 32
    n_ffts: tuple[int, ...] = (2048, 1024, 512, 256, 128)
    kernel_size: tuple[int, int] = (3, 9)
    dilations: tuple[int, ...] = (1, 2, 4)


@dataclass
class LossConfig:
    """L_G = time*L1 + mel*L_mel + quant*L_q + adv*L_adv + feat*L_feat (a plain weighted sum)."""
    time: float = 0.5
    mel: float = 0.5
    quant: float = 0.5
    adv: float = 1.0
    feat: float = 5.0
    # DECISION: 64 mel bins (the authors intended 64; their run used 32). Override with loss.n_mels=32.
    n_mels: int = 64
    mel_scales: tuple[int, ...] = (5, 6, 7, 8, 9, 10, 11)   # n_fft = win = 2**i, hop = win // 4
    # The spec: log10 of magnitude mels (HTK filters), L1 + MSE, floor 1e-5. The authors' code used power
    # mels with a Slaney filterbank; both are options (mel_power=2, mel_filterbank="slaney").
    mel_power: float = 1.0
    mel_filterbank: MelFilterbank = "htk"
    mel_mse_weight: float = 1.0
    mel_floor: float = 1e-5
    # Multi-resolution linear STFT loss (spectral convergence + log-magnitude L1), off in the paper's
    # form; an option for the mini model: L_G += stft * L_stft.
    stft: float = 0.0
    stft_scales: tuple[int, ...] = (9, 10, 11)              # n_fft = win = 2**i, hop = win // 4
    # Phase losses of APNet / APCodec on the iSTFT head's predicted phase against the target's STFT
    # phase (codec/losses/phase.py; seanet.decoder=istft only): anti-wrapping instantaneous phase, group
    # delay and instantaneous angular frequency, L_G += phase_ip * L_IP + phase_gd * L_GD + phase_iaf * L_IAF.
    # Off in the paper's design (SEANet decoder, adversarial training); options for the mini model (docs/codec_phase.md).
    phase_ip: float = 0.0
    phase_gd: float = 0.0
    phase_iaf: float = 0.0
    # "none": every bin alike (APNet); "magnitude": each bin weighted by the target's magnitude
    phase_weighting: PhaseWeighting = "none"
    # False: the phase losses train only the head's last LayerNorm + projection (its input detached),
    # so they cannot pull the shared layers away from the mel terms; True: every layer (APNet's way).
    phase_trunk_grad: bool = True
    # Multi-resolution loss on the power-law compressed complex STFT of the output waveform
    # (|S|^c e^{i angle S}, RMS-normalised; codec/losses/phase.py): L_G += complex * L_complex. Off by default.
    complex: float = 0.0
    complex_scales: tuple[int, ...] = (9, 10, 11)           # n_fft = win = 2**i, hop = win // 4
    complex_compress: float = 0.3
    # The harmonic source's outputs (seanet.istft.pitch.source=harmonic; codec/losses/pitch.py):
    # L_G += f0 * CE(F0 classes, Gaussian targets at the tracker's F0; voiced frames)
    #      + voicing * BCE(voicing, the tracker's). Measured in docs/codec_pitch.md.
    f0: float = 0.1
    voicing: float = 0.02
    # Discriminator schedule: off for the first `disc_start` generator updates, then updated every
    # `disc_every` steps; the adversarial and feature losses join the generator loss at disc_start.
    disc_start: int = 50_000
    disc_every: int = 3


@dataclass
class OptimConfig:
    lr: float = 3e-4
    disc_lr: float = 3e-4
    betas: tuple[float, float] = (0.8, 0.9)
    eps: float = 1e-6
    weight_decay: float = 0.01       # decoupled (AdamW), as fairseq's Adam
    warmup_steps: int = 3000
    # after the warmup: constant (the authors'), or cosine down to lr * min_lr_ratio at train.max_steps
    # (a run with a known length ends on a small learning rate; see codec_mini.yaml for its measurement)
    schedule: LRSchedule = "constant"
    min_lr_ratio: float = 0.0
    grad_clip: float = 20.0


@dataclass
class DataConfig:
    train_manifests: tuple[str, ...] = ()     # JSONL manifests (data_prep.libritts)
    valid_manifests: tuple[str, ...] = ()
    # F0 caches of the training manifests (python -m data_prep.pitch; one .npz per manifest, keyed by id):
    # the harmonic source's targets. Needed when seanet.istft.pitch.source=harmonic.
    train_f0: tuple[str, ...] = ()
    segment_seconds: float = 1.0
    min_seconds: float = 0.25
    max_seconds: float = 20.0
    silence_db: float = -50.0       # crops whose RMS is below this are redrawn
    batch_size: int = 29
    num_workers: int = 2
    valid_items: int = 16           # held-out utterances evaluated at each evaluation


@dataclass
class TrainConfig:
    exp_dir: str = "exp/codec"
    seed: int = 1234
    max_steps: int = 500_000
    max_minutes: Optional[float] = None     # stop (and checkpoint) after this wall time
    log_every: int = 50
    eval_every: int = 5000
    ckpt_every: int = 5000
    keep_last: int = 3
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"   # the authors trained in fp32
    max_bad_steps: int = 20         # abort after this many NaN/Inf steps in a row
    # Multi-bandwidth training: one bandwidth per step from this set, the same on every rank.
    bandwidths: tuple[float, ...] = (1.0, 1.5, 3.0, 4.5, 6.0, 9.0, 12.0, 16.0, 24.0)
    # Probability that a step trains every stage (the largest bandwidth) instead of a uniform draw, as
    # DAC's quantizer dropout of 0.5. 0 = the authors' uniform draw, where the last stages train only on
    # steps that draw the largest bandwidth (1 in 5 in the mini config).
    full_bandwidth_prob: float = 0.0


@dataclass
class CodecConfig:
    sample_rate: int = 24_000
    bandwidths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0, 24.0)   # offered at inference (kbps)
    normalize: bool = True          # divide by RMS; the scale travels with the codes
    seanet: SEANetConfig = field(default_factory=SEANetConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.seanet.hop_length

    @property
    def bits_per_code(self) -> int:
        return int(math.ceil(math.log2(self.quantizer.codebook_size)))

    def n_q_for_bandwidth(self, kbps: float) -> int:
        """Stages that fit in `kbps`: max(1, floor(bw / kbps-per-stage)), capped at n_q."""
        per_stage = self.frame_rate * self.bits_per_code / 1000.0
        return max(1, min(self.quantizer.n_q, int(math.floor(kbps / per_stage + 1e-9))))
