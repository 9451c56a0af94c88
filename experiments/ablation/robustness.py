"""Robustness of a trained codec: audio metrics under input noise, and code stability.

    noisy = mix_at_snr(clean, noise, snr_db)        10 log10(P_clean / P_noise) == snr_db exactly
    white_noise(n, rng)                             N(0, 1) samples
    babble_noise(n, others, talkers, rng)           sum of `talkers` other utterances, each at unit RMS

Scores of the noisy input's reconstruction are taken against the CLEAN reference (what a listener
wanted), through the real `Codec.encode` / `Codec.decode` path, with the shared `codec.evaluate.Scorer`
(so the metrics are codec.evaluation.metrics', never re-implemented here).

Code stability: the fraction of frames whose code differs between two encodings, per stage
(`flip_fraction`), (a) clean vs noisy input and (b) clean latent vs latent + Gaussian noise of
`level` x the latent's std (per utterance, over all dims and frames). Flips of stage k > 1 include
the knock-on effect of an earlier stage's flip (the residual changes): that is what a downstream model
sees, so it is reported as is.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence

import numpy as np
import torch

log = logging.getLogger("experiments.ablation")

NoiseKind = Literal["white", "babble"]
NOISE_KINDS: tuple[str, ...] = ("white", "babble")


# ------------------------------------------------------------------------------------------ signals
def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """clean + g * noise with g chosen so that the clean-to-noise power ratio is `snr_db`.  [T] -> [T]"""
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if clean.shape != noise.shape or clean.ndim != 1:
        raise ValueError(f"mix_at_snr: clean {clean.shape} and noise {noise.shape} must be equal 1-D shapes")
    pc, pn = float(np.mean(clean ** 2)), float(np.mean(noise ** 2))
    if pn <= 0.0:
        raise ValueError("mix_at_snr: the noise has no energy")
    if pc <= 0.0:
        raise ValueError("mix_at_snr: the clean signal has no energy (SNR undefined)")
    gain = np.sqrt(pc / (pn * 10.0 ** (snr_db / 10.0)))
    return (clean + gain * noise).astype(np.float32)


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def babble_noise(n: int, others: Sequence[np.ndarray], talkers: int, rng: np.random.Generator) -> np.ndarray:
    """Babble-like noise of n samples: `talkers` utterances drawn from `others`, each scaled to unit RMS,
    circularly shifted by a random offset and tiled to length n, summed."""
    if not others:
        raise ValueError("babble_noise: needs at least one other utterance")
    picks = rng.choice(len(others), size=talkers, replace=len(others) < talkers)
    out = np.zeros(n)
    for i in picks:
        w = np.asarray(others[i], dtype=np.float64)
        w = w / (np.sqrt(np.mean(w ** 2)) + 1e-12)
        w = np.roll(np.resize(w, max(n, w.size)), -int(rng.integers(0, w.size)))[:n]
        out += w
    return out


def make_noisy(wavs: Sequence[np.ndarray], kind: NoiseKind, snr_db: float, seed: int, talkers: int = 4,
               pool: Optional[Sequence[np.ndarray]] = None) -> list[np.ndarray]:
    """Every utterance with `kind` noise at `snr_db`; deterministic in (seed, kind, snr, item index).

    Babble for item i mixes utterances of `pool` (default: the other items of `wavs`), never item i.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r} (expected one of {NOISE_KINDS})")
    own = pool is None
    pool = list(wavs if own else pool)
    out = []
    for i, w in enumerate(wavs):
        rng = np.random.default_rng([seed, NOISE_KINDS.index(kind), int(round(snr_db * 100)) & 0xFFFF, i])
        if kind == "white":
            noise = white_noise(w.size, rng)
        else:
            others = [p for j, p in enumerate(pool) if not own or j != i]
            noise = babble_noise(w.size, others, talkers, rng)
        out.append(mix_at_snr(w, noise, snr_db))
    return out


# ------------------------------------------------------------------------------------------ flips
def flip_fraction(a: torch.Tensor, b: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> list[float]:
    """Per stage, the fraction of valid frames whose codes differ.  a, b: [B, K, T]; lengths [B] -> [K]"""
    if a.shape != b.shape:
        raise ValueError(f"flip_fraction: code shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    B, K, T = a.shape
    valid = torch.ones(B, T, dtype=torch.bool) if lengths is None else (
        torch.arange(T)[None] < lengths.reshape(B, 1).to(torch.long))
    n = int(valid.sum())
    if n == 0:
        raise ValueError("flip_fraction: no valid frames")
    diff = (a != b) & valid[:, None, :]
    return [float(diff[:, k].sum()) / n for k in range(K)]


def latents(codec, wavs: Sequence[np.ndarray], scales: Sequence[float]) -> list[torch.Tensor]:
    """Encoder output of each utterance (eval mode, the codec's RMS normalisation).  -> [1, D, T_i]"""
    m = codec.engine.model
    with torch.inference_mode():
        return [m.encoder(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))[None, None] / s)
                for w, s in zip(wavs, scales)]


def latent_noise_flips(codec, zs: Sequence[torch.Tensor], levels: Sequence[float], seed: int,
                       n_q: Optional[int] = None) -> dict[str, list[float]]:
    """{level: per-stage flip fraction} when N(0, (level * std(z))^2) is added to each latent z."""
    q = codec.model.quantizer
    n_q = n_q or q.n_q
    out = {}
    with torch.inference_mode():
        clean = [q.encode(z, n_q) for z in zs]
        for level in levels:
            gen = torch.Generator().manual_seed(seed * 1009 + int(round(level * 1000)))
            flips = []
            for z, c in zip(zs, clean):
                noisy = z + level * z.std() * torch.randn(z.shape, generator=gen)
                flips.append(q.encode(noisy, n_q) != c)               # [1, n_q, T]
            total = torch.cat([f[0] for f in flips], dim=1)            # [n_q, frames]
            out[f"{level:g}"] = total.float().mean(1).tolist()
    return out


# ------------------------------------------------------------------------------------------ the measure
@dataclass
class RobustnessResult:
    items: int
    snrs_db: list[float]
    kinds: list[str]
    bandwidths: list[float]
    # rows: {"kind", "snr_db", "kbps", "n_q", "scores": {metric: {mean, std, n}}}; scored against the clean input
    rows: list[dict] = field(default_factory=list)
    input_flips: dict[str, list[float]] = field(default_factory=dict)    # "white@20" -> per-stage fractions
    latent_flips: dict[str, list[float]] = field(default_factory=dict)   # "0.1" -> per-stage fractions


def measure(codec, wavs: Sequence[np.ndarray], bandwidths: Sequence[float], scorer, snrs_db: Sequence[float],
            kinds: Sequence[str], latent_levels: Sequence[float], seed: int = 0,
            babble_pool: Optional[Sequence[np.ndarray]] = None) -> RobustnessResult:
    """Noisy-input scores at `bandwidths`, and code flips at full depth (see module docstring)."""
    wavs = [np.ascontiguousarray(w, dtype=np.float32) for w in wavs]
    res = RobustnessResult(len(wavs), [float(s) for s in snrs_db], list(kinds), [float(b) for b in bandwidths])
    n_q = codec.n_q
    clean = codec.encode(wavs, codec.sample_rate, n_q=n_q)
    jobs = []
    for kind in kinds:
        for snr in snrs_db:
            noisy = make_noisy(wavs, kind, snr, seed, pool=babble_pool)
            enc = codec.encode(noisy, codec.sample_rate, n_q=n_q)
            res.input_flips[f"{kind}@{snr:g}"] = flip_fraction(clean.codes, enc.codes, clean.lengths)
            for bw in bandwidths:
                k = codec.resolve_n_q(bw)
                y = codec.decode(enc.codes[:, :k], enc.scales, enc.lengths, enc.num_samples)
                degs = [y[i, 0, :n].numpy() for i, n in enumerate(enc.num_samples.tolist())]
                jobs.append(({"kind": kind, "snr_db": float(snr), "kbps": float(bw), "n_q": k},
                             scorer.submit(wavs, degs)))
    zs = latents(codec, wavs, clean.scales[:, 0].tolist())
    res.latent_flips = latent_noise_flips(codec, zs, latent_levels, seed, n_q)
    for row, handle in jobs:
        row["scores"] = scorer.collect(handle)
        res.rows.append(row)
    return res
