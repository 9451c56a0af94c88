"""Shared helpers for codec tests: a tiny config and a tiny corpus of synthetic speech-like wavs."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.config import CodecConfig, DataConfig, LossConfig, OptimConfig, QuantizerConfig, SEANetConfig, TrainConfig

TINY_SR = 8000


def tiny_config(tmp: str | Path | None = None, kind: str = "ndvq", **train_kw) -> CodecConfig:
    """A codec small enough to train a few steps in seconds on CPU: hop 16 -> 500 frames/s at 8 kHz."""
    cfg = CodecConfig(
        sample_rate=TINY_SR,
        bandwidths=(4.0, 16.0),
        seanet=SEANetConfig(n_filters=4, dimension=8, ratios=(4, 4), lstm_layers=0),
        quantizer=QuantizerConfig(kind=kind, dimension=8, codebook_size=16, n_q=4, kmeans_iters=5),
        loss=LossConfig(n_mels=16, mel_scales=(6, 7, 8), disc_start=2, disc_every=2),
        optim=OptimConfig(lr=3e-3, disc_lr=3e-3, warmup_steps=2),
        train=TrainConfig(exp_dir=str(tmp or "exp/test"), max_steps=6, log_every=1, eval_every=0,
                          ckpt_every=3, keep_last=5, bandwidths=(2.0, 4.0, 8.0, 16.0)),
    )
    cfg = replace(cfg, discriminator=replace(cfg.discriminator, filters=4, n_ffts=(128, 64)))
    if tmp is not None:
        cfg = replace(cfg, data=DataConfig(train_manifests=(str(Path(tmp) / "train.jsonl"),),
                                           valid_manifests=(str(Path(tmp) / "valid.jsonl"),),
                                           segment_seconds=0.1, min_seconds=0.05, batch_size=4, num_workers=0,
                                           valid_items=2))
    if train_kw:
        cfg = replace(cfg, train=replace(cfg.train, **train_kw))
    return cfg


def tiny_wav(seed: int, seconds: float = 0.4, sr: int = TINY_SR) -> np.ndarray:
    """A voiced-speech-like signal: harmonics of a gliding f0, amplitude-modulated, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(h * phase) / h for h in range(1, 8))
    env = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t))
    x = 0.2 * x * env + 0.005 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def write_corpus(root: str | Path, n_train: int = 6, n_valid: int = 2, seconds: float = 0.4) -> Path:
    """WAVs + train.jsonl/valid.jsonl manifests (the data_prep row format) under `root`."""
    root = Path(root)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    for split, n, base in (("train", n_train, 0), ("valid", n_valid, 1000)):
        with open(root / f"{split}.jsonl", "w") as fh:
            for i in range(n):
                path = root / "wav" / f"{split}{i}.wav"
                sf.write(path, tiny_wav(base + i, seconds), TINY_SR)
                fh.write(json.dumps({"id": f"{split}{i}", "path": str(path.resolve()), "duration": seconds,
                                     "sr": TINY_SR, "speaker": "s", "chapter": "0", "text_norm": "x",
                                     "text_orig": "x"}) + "\n")
    return root
