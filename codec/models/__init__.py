"""The codec's networks.

    ndvq_codec.py      NDVQCodec: encoder -> residual quantizer -> decoder ([B, 1, T] -> codes [B, K, T'])
    seanet.py          SEANet encoder and decoder (the paper's), split pre -> lstm -> post for streaming
    stft_encoder.py    a log-magnitude STFT + ConvNeXt encoder (an option for the mini model)
    istft_decoder.py   a ConvNeXt + inverse-STFT decoder head (an option for the mini model)
    discriminator.py   the multi-scale STFT discriminator (training only)
    conv.py            padded / causal convolutions, the LSTM, weight-norm folding, channels-last layers
    spectral.py        mel filterbank and log-mel features

Names are imported on first use (PEP 562).
"""
from __future__ import annotations

from core.lazy import lazy_face

_EXPORTS = {
    "NDVQCodec": "ndvq_codec",
    "MultiScaleSTFTDiscriminator": "discriminator", "STFTDiscriminator": "discriminator",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS)
