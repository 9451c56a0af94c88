"""The codec's training losses: reconstruction (spectral.py), adversarial (adversarial.py) and the
phase-aware terms of the inverse-STFT head (phase.py, off by default: docs/codec_phase.md). The
quantizer's own loss comes with its output (codec/quantization)."""
from .adversarial import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss
from .phase import CompressedComplexLoss, PhaseLoss
from .spectral import MultiResolutionSTFTLoss, MultiScaleMelLoss, mel_distance

__all__ = ["MultiScaleMelLoss", "MultiResolutionSTFTLoss", "mel_distance", "hinge_generator_loss",
           "hinge_discriminator_loss", "feature_matching_loss", "PhaseLoss", "CompressedComplexLoss"]
