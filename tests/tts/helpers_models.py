"""Tiny VALL-E models, exported model directories (tts/checkpoint.py) and a tiny codec for the model tests."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_model

from core.config import to_dict
from tts.build import build_model
from tts.config import ModelConfig


def tiny_model_config(**kw) -> ModelConfig:
    base = ModelConfig(n_layers=2, d_model=32, n_heads=4, ffn_mult=2, dropout=0.0, vocab_size=144,
                       codebook_size=32, n_q=4, max_frames=1024)
    return replace(base, **kw)


def tiny_models(seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = tiny_model_config(**kw)
    return build_model(cfg, "ar").eval(), build_model(cfg, "nar").eval(), cfg


def export_model(model, part: str, out_dir: Path, codec_sha256: str, codec, frontend) -> Path:
    """Write config.json (tts/checkpoint.py) + model.safetensors the way tts.checkpoint reads them."""
    from tts.config import TTSConfig
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {**to_dict(TTSConfig(model=model.cfg)), "part": part, "codec_sha256": codec_sha256,
              "codec": {"sample_rate": codec.sample_rate, "frame_rate": codec.frame_rate, "n_q": codec.n_q,
                        "codebook_size": codec.codebook_size},
              "frontend": frontend.to_dict()}
    (out_dir / "config.json").write_text(json.dumps(record, indent=2))
    save_model(model, str(out_dir / "model.safetensors"))
    return out_dir


def tiny_exp(tmp: Path, seed: int = 0, **kw) -> Path:
    """exp/{codec,ar,nar}/model with a tiny random codec (16 kHz, 4 x 32 codes) and tiny models."""
    from data_prep.frontend import TextFrontend
    from tests.codec.helpers_inference import tiny_codec
    exp = Path(tmp) / "exp"
    codec = tiny_codec(seed)
    codec.save_pretrained(exp / "codec" / "model")
    ar, nar, _ = tiny_models(seed, codebook_size=codec.codebook_size, n_q=codec.n_q, **kw)
    fe = TextFrontend.default()
    for part, m in (("ar", ar), ("nar", nar)):
        export_model(m, part, exp / part / "model", codec.checkpoint_sha256, codec, fe)
    return exp
