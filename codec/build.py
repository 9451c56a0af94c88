"""Small factories: the config in, the built parts handed to the top-level model out."""
from __future__ import annotations

from dataclasses import replace

from torch import nn

from .config import CodecConfig
from .models.discriminator import MultiScaleSTFTDiscriminator
from .losses import MultiResolutionSTFTLoss, MultiScaleMelLoss
from .models.ndvq_codec import NDVQCodec
from .quantization import build_quantizer
from .models.seanet import SEANetDecoder, SEANetEncoder


def build_decoder(cfg: CodecConfig) -> nn.Module:
    """`seanet.decoder`: "seanet" (the paper's) or "istft" (codec/models/istft_decoder.py)."""
    if cfg.seanet.decoder == "seanet":
        return SEANetDecoder(cfg.seanet)
    if cfg.seanet.decoder == "istft":
        from .models.istft_decoder import ISTFTDecoder
        return ISTFTDecoder(cfg.seanet, cfg.sample_rate)
    raise ValueError(f"seanet.decoder={cfg.seanet.decoder!r}: expected 'seanet' or 'istft'")


def build_pitch_loss(cfg: CodecConfig):
    """The harmonic source's F0/voicing loss (codec/losses/pitch.py), or None without a harmonic head."""
    if cfg.seanet.decoder != "istft" or cfg.seanet.istft.pitch.source != "harmonic":
        return None
    from .losses.pitch import PitchLoss
    p = cfg.seanet.istft.pitch
    return PitchLoss(p.bins, p.f0_min, p.f0_max, p.target_sigma, cfg.loss.f0, cfg.loss.voicing)


def build_encoder(cfg: CodecConfig) -> nn.Module:
    """`seanet.encoder`: "seanet" (the paper's) or "stft" (codec/models/stft_encoder.py)."""
    if cfg.seanet.encoder == "seanet":
        return SEANetEncoder(cfg.seanet)
    if cfg.seanet.encoder == "stft":
        from .models.stft_encoder import STFTEncoder
        return STFTEncoder(cfg.seanet)
    raise ValueError(f"seanet.encoder={cfg.seanet.encoder!r}: expected 'seanet' or 'stft'")


def build_codec(cfg: CodecConfig) -> NDVQCodec:
    if cfg.quantizer.dimension != cfg.seanet.dimension:
        # The spec has no projection: the quantizer works on the encoder's latent as it is.
        cfg = replace(cfg, quantizer=replace(cfg.quantizer, dimension=cfg.seanet.dimension))
    return NDVQCodec(build_encoder(cfg), build_decoder(cfg), build_quantizer(cfg.quantizer), cfg)


def build_discriminator(cfg: CodecConfig) -> MultiScaleSTFTDiscriminator:
    return MultiScaleSTFTDiscriminator(cfg.discriminator)


def build_mel_loss(cfg: CodecConfig) -> MultiScaleMelLoss:
    lc = cfg.loss
    return MultiScaleMelLoss(cfg.sample_rate, lc.n_mels, lc.mel_scales, power=lc.mel_power,
                             filterbank=lc.mel_filterbank, mse_weight=lc.mel_mse_weight, floor=lc.mel_floor)


def build_stft_loss(cfg: CodecConfig) -> MultiResolutionSTFTLoss | None:
    """The optional linear-STFT term (`loss.stft` > 0), or None."""
    return MultiResolutionSTFTLoss(cfg.loss.stft_scales) if cfg.loss.stft > 0 else None
