"""NDVQ: a neural audio codec with normal-distribution residual quantization.

    from codec import Codec
    codec = Codec.from_pretrained("exp/codec/model")            # or a Hugging Face Hub id
    res = codec.encode(wav, sample_rate=16000, bandwidth=6.0)    # res.codes [B, K, T]
    audio = codec.decode(res)                                    # [B, 1, T'] at codec.sample_rate

The package, by concept:

    config.py                 CodecConfig and its parts (the leaf: imports nothing of the package)
    models/                   the networks: NDVQCodec, SEANet, the STFT encoder, the iSTFT decoder and
                              its harmonic source (harmonic.py), the discriminator, convolutions, mels
    quantization/             residual quantizers: NDVQ's normal codebooks, the RVQ baseline, k-means
    losses/                   training objectives: spectral, adversarial, phase (off by default), pitch
    build.py                  build_codec: a CodecConfig -> an NDVQCodec (and the training parts)
    checkpoint.py             export_codec / load_codec: the model directory (config.json + weights)
    train.py, data.py, valid.py   training (python -m codec.train), its data, its validation
    api.py                    Codec, the user-facing handle (encode, decode, files, the Hub)
    inference/                what runs behind Codec: the folded engine, canonical windows and
                              streaming, channels-last / bf16 rewrites and the fused quantizer
    bitstream.py              the .ndvq file of one utterance's codes
    __main__.py               python -m codec encode|decode|roundtrip|tokenize
    tokenize.py, code_dump/   a corpus -> a code dump for language models (docs/code_dump.md)
    evaluate.py, evaluation/  scoring checkpoints (python -m codec.evaluate); its metrics, pitch,
                              ceiling rows, report and plots

Names are imported on first use (PEP 562): `import codec` loads nothing heavy, so an entry point can
import core.runtime before torch loads.
"""
from __future__ import annotations

from core.lazy import lazy_face

_EXPORTS = {
    "Codec": "api", "EncodeResult": "api",
    "CodecConfig": "config",
    "build_codec": "build",
    "load_codec": "checkpoint", "export_codec": "checkpoint",
    "NDVQCodec": "models.ndvq_codec",
    "CodeDump": "code_dump", "DumpWriter": "code_dump",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS)
