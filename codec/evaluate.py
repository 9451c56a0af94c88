"""Score codec checkpoints on held-out audio: audio metrics per bitrate against two reference rows.

    python -m codec.evaluate --exp-dir exp/codec --manifest data/manifests/test-clean.jsonl --out exp/codec/eval
    python -m codec.evaluate --checkpoint exp/codec/model --manifest ... [--bandwidths 1.5 6] \
        [--metrics pesq stoi si_sdr mel visqol dnsmos] [--max-items 30] [--jobs 2]

`--checkpoint` (repeatable) is an exported model directory or a training checkpoint directory (both
hold config.json + model.safetensors); `--exp-dir` scores a training run's exported `model/` and, for
comparison, earlier saved checkpoints (`--curve-points`, evenly spaced), and draws learning_curve.png.
The last checkpoint given is the one evaluated in full:

- one row per bitrate (default: every bandwidth the model offers, `cfg.bandwidths`), through the
  real path: `codec.api.Codec.encode` then `Codec.decode` (eval mode, the codes' means, canonical
  windows). Each utterance is encoded once with all stages; the codes of a bitrate with n_q stages
  are the first n_q rows (residual quantization: stage k never depends on later stages).
- two reference rows on the same utterances: the decoder fed the *unquantized latent* (what the
  quantizer costs), and a *no-information* decoder fed the set's mean latent, constant in time
  (with each utterance's RMS scale), the floor any score must be read against.
- with `--oracles`, two ceiling rows (codec.evaluation.oracle): the reference's own STFT magnitude on the iSTFT
  head's frame grid with a random phase and with a Griffin-Lim phase, what a decoder that got every
  magnitude right would score with an incoherent and with a consistent phase.
- code usage per stage over all frames at full depth (perplexity = exp of the code entropy, unused
  codes, RMS of the residual left after the stage relative to the latent's RMS).

- pitch (unless `--no-pitch`; codec.evaluation.pitch): every row's F0 track against the recording's,
  pooled over the utterances: median F0 error in cents on frames voiced in both, the share within 50
  cents, gross pitch error (GPE) and voicing decision error (VDE); and pitch_spectrogram.png, narrowband
  spectrograms (0-1.5 kHz) of the highest- and lowest-pitched references at the lowest and highest rate.

Metrics come from codec.evaluation.metrics (PESQ-WB, STOI, SI-SDR, mel L1 by default; ViSQOL and DNSMOS on
request: they cost about 0.1 s and 1-5 s a clip). A metric whose package is missing is reported as
"missing", never as a number. Every score is the mean ± std over utterances. Earlier checkpoints get
the bitrate rows only. `--out PREFIX` writes PREFIX.json, PREFIX.md and plots in PREFIX/
(metrics_vs_bitrate.png, code_usage.png, spectrogram.png, pitch_spectrogram.png).
"""
from __future__ import annotations

import core.runtime  # noqa: F401  (first: the OpenMP waiting policy, before numpy and torch load)

import argparse
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from core.checkpoint import WEIGHTS_FILE, list_checkpoints
from core.io import atomic_write_text, sha256_file
from core.logs import setup_logging
from data_prep.pitch import track_f0

import codec.evaluation.metrics as M
from .api import Codec
from .checkpoint import load_codec, load_codec_config
from .data import load_eval_set
from .evaluation.oracle import oracle_magnitude
from .evaluation.pitch import row_pitch, tracks as pitch_tracks
from .quantization.base import usage_metrics
from .evaluation.report import (CURVE_PLOT, PITCH_PLOT, ROW_TITLES, CheckpointResult, Row, StageUsage, _fmt_scores,
                                markdown_report, write_learning_curve, write_plots)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ scoring
F0_KEY = "_f0"          # a per-item result's F0 track of the output (pooled by Scorer.pitch, not averaged)


def _score_batch(pairs: list[tuple[np.ndarray, np.ndarray]], sr: int, metrics: tuple[str, ...],
                 pitch: bool = False) -> list[dict]:
    out = []
    for r, d in pairs:
        s = M.score_pair(r, d, sr, metrics)
        if pitch:
            s[F0_KEY] = track_f0(d, sr)
        out.append(s)
    return out


def _init_worker() -> None:
    torch.set_num_threads(1)           # metric workers share the cores with each other


def summarize(per_item: list[dict], keys: list[str]) -> dict[str, Optional[dict[str, float]]]:
    """{key: {mean, std, n}} over items (NaNs left out; n counts the finite ones); None if missing."""
    out: dict[str, Optional[dict[str, float]]] = {}
    for k in keys:
        vals = [s.get(k) for s in per_item]
        if any(v is None for v in vals):
            out[k] = None
            continue
        a = np.asarray(vals, dtype=np.float64)
        a = a[np.isfinite(a)]
        out[k] = ({"mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)} if a.size
                  else {"mean": float("nan"), "std": float("nan"), "n": 0})
    return out


@dataclass
class _Job:
    """What Scorer.submit hands back: the scoring's parts (lists or futures) and the references' F0 tracks."""
    parts: list
    ref_f0: Optional[list[np.ndarray]] = None


class Scorer:
    """Scores rows of (reference, degraded) pairs, in `jobs` worker processes (PESQ/STOI are
    single-threaded C/numpy); results are collected when asked for, so decoding overlaps scoring.
    `pool`: share another scorer's workers (this scorer then leaves them running on close).
    `pitch`: also track each output's F0 (codec.evaluation.pitch), pooled against the references'
    tracks given to `submit`."""

    def __init__(self, sample_rate: int, metrics: Sequence[str], jobs: int = 1, chunk: int = 4,
                 pool: Optional[Executor] = None, pitch: bool = False):
        self.sr, self.metrics, self.chunk, self.pitch = sample_rate, M.check_metrics(metrics), chunk, pitch
        self.keys = M.score_keys(self.metrics)
        self.pool, self._owns_pool = pool, pool is None
        if pool is None and jobs > 1:
            # spawn: a forked child of a process whose OpenMP pool is running can hang in torch
            self.pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker)

    def submit(self, refs: list[np.ndarray], degs: list[np.ndarray],
               ref_f0: Optional[list[np.ndarray]] = None) -> _Job:
        """Score the pairs; with `pitch`, `ref_f0` are the references' tracks (None: tracked here)."""
        pairs = list(zip(refs, degs))
        if self.pitch and ref_f0 is None:
            ref_f0 = pitch_tracks(refs, self.sr)
        if self.pool is None:
            return _Job([_score_batch(pairs, self.sr, self.metrics, self.pitch)], ref_f0)
        return _Job([self.pool.submit(_score_batch, pairs[i:i + self.chunk], self.sr, self.metrics, self.pitch)
                     for i in range(0, len(pairs), self.chunk)], ref_f0)

    def _items(self, handle: _Job | list) -> list[dict]:
        parts = handle.parts if isinstance(handle, _Job) else handle
        return [s for part in parts for s in (part if isinstance(part, list) else part.result())]

    def collect(self, handle: _Job | list) -> dict[str, Optional[dict[str, float]]]:
        return summarize(self._items(handle), self.keys)

    def collect_pitch(self, handle: _Job) -> Optional[dict]:
        """The row's pooled pitch scores (codec.evaluation.pitch.row_pitch); None without `pitch`."""
        if not self.pitch or handle.ref_f0 is None:
            return None
        return row_pitch(handle.ref_f0, [s[F0_KEY] for s in self._items(handle)])

    def close(self) -> None:
        if self.pool is not None and self._owns_pool:
            self.pool.shutdown()


# ------------------------------------------------------------------------------------------ one checkpoint
@torch.no_grad()
def evaluate_checkpoint(checkpoint: str | Path, wavs: list[np.ndarray], bandwidths: Sequence[float],
                        scorer: Scorer, full: bool = True, keep_audio: bool = False,
                        oracles: bool = False, ref_f0: Optional[list[np.ndarray]] = None
                        ) -> tuple[CheckpointResult, dict]:
    """Rows for one checkpoint (see module docstring); `full` adds reference rows and code usage,
    `oracles` (with `full`) the ceiling rows of codec.evaluation.oracle; with a pitch scorer, `ref_f0` are
    the references' F0 tracks (None: tracked here).

    wavs: mono float32 [T] at the codec's rate. Returns the result and, with keep_audio, the decoded
    audio per row name (for plots) plus the per-stage code counts ("counts": [n_q, K]).
    """
    model = load_codec(checkpoint)
    codec = Codec(model, checkpoint_sha256=sha256_file(Path(checkpoint) / WEIGHTS_FILE))
    engine = codec.engine
    n_qs = [codec.resolve_n_q(bw) for bw in bandwidths]
    top = codec.n_q if full else max(n_qs)
    t0 = time.perf_counter()
    enc = codec.encode(wavs, codec.sample_rate, n_q=top)               # codes [B, top, T], padded
    refs = [w for w in wavs]
    if scorer.pitch and ref_f0 is None:
        ref_f0 = pitch_tracks(wavs, codec.sample_rate)
    jobs, audio = [], {}
    for bw, n_q in zip(bandwidths, n_qs):
        y = codec.decode(enc.codes[:, :n_q], enc.scales, enc.lengths, enc.num_samples)   # [B, 1, T']
        degs = [y[i, 0, :n].numpy() for i, n in enumerate(enc.num_samples.tolist())]
        jobs.append((Row("codes", float(bw), n_q, actual_kbps=round(codec.kbps(n_q), 4)), scorer.submit(refs, degs, ref_f0)))
        if keep_audio:
            audio[f"{codec.kbps(n_q):g} kbps"] = degs
    usage, counts = [], None
    if full:
        m = engine.model
        latents = [m.encoder(torch.from_numpy(w)[None, None] / s) for w, s in zip(wavs, enc.scales[:, 0].tolist())]
        mean = torch.cat([z[0] for z in latents], dim=1).mean(dim=1)          # [D] over every frame
        for kind in ("unquantized", "no_information"):
            degs = []
            for z, s, n in zip(latents, enc.scales[:, 0].tolist(), enc.num_samples.tolist()):
                zin = z if kind == "unquantized" else mean[None, :, None].expand_as(z).contiguous()
                degs.append((m.decoder(zin)[0, 0, :n] * s).numpy())
            jobs.append((Row(kind), scorer.submit(refs, degs, ref_f0)))
            if keep_audio:
                audio[ROW_TITLES[kind]] = degs
        usage, counts = code_usage(codec, enc, latents)
    if full and oracles:
        for kind, phase in (("oracle_random", "random"), ("oracle_griffin_lim", "griffin_lim")):
            jobs.append((Row(kind), scorer.submit(refs, [oracle_magnitude(w, codec.hop_length, phase) for w in wavs],
                                                       ref_f0)))
    log.info("%s: encoded and decoded %d rows in %.1f s", checkpoint, len(jobs), time.perf_counter() - t0)
    rows = []
    for row, handle in jobs:
        row.scores, row.pitch = scorer.collect(handle), scorer.collect_pitch(handle)
        rows.append(row)
    res = CheckpointResult(str(checkpoint), _step_of(Path(checkpoint)), codec.checkpoint_sha256 or "", rows,
                           usage, codec.codebook_size, int(enc.lengths.sum()))
    extra = {"audio": audio, "counts": counts} if keep_audio else {}
    return res, extra


def code_usage(codec: Codec, enc, latents: list[torch.Tensor]) -> tuple[list[StageUsage], np.ndarray]:
    """Per-stage usage over all valid frames (the quantizer's usage_metrics) and residual RMS."""
    K, n_q = codec.codebook_size, enc.codes.shape[1]
    codes = torch.cat([enc.item_codes(i) for i in range(len(enc))], dim=1)         # [n_q, frames]
    z = torch.cat([zz[0, :, : int(enc.lengths[i])] for i, zz in enumerate(latents)], dim=1)   # [D, frames]
    z_rms = float(z.pow(2).mean().sqrt())
    stages, counts = [], []
    for k in range(n_q):
        use = usage_metrics(codes[k], K, "s")
        zq = codec.engine.quantizer.decode(codes[None, : k + 1])[0]           # [D, frames] sum of stages <= k
        stages.append(StageUsage(k + 1, K - int(use["s/unused"]), int(use["s/unused"]),
                                 float(use["s/perplexity"]), float((z - zq).pow(2).mean().sqrt()) / max(z_rms, 1e-12)))
        counts.append(torch.bincount(codes[k], minlength=K).numpy())
    return stages, np.stack(counts)


# ------------------------------------------------------------------------------------------ runs
def run_checkpoints(exp_dir: str | Path, points: int = 2) -> list[Path]:
    """`points - 1` of a training run's saved checkpoints, then its exported model: the points of the
    learning curve, in step order, evenly spaced from the first checkpoint towards the model (a
    checkpoint of the model's own step is the model again and is left out)."""
    exp_dir = Path(exp_dir)
    model = exp_dir / "model"
    if not (model / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{exp_dir}: no exported model (model/model.safetensors); train first")
    if points < 1:
        raise ValueError(f"points={points}: the exported model is always scored, so at least 1")
    final = _step_of(model)
    ckpts = [c for c in list_checkpoints(exp_dir) if _step_of(c) != final]
    n = min(points - 1, len(ckpts))
    picks = range(len(ckpts)) if n == len(ckpts) else sorted({round(i * (len(ckpts) - 1) / n) for i in range(n)})
    return [ckpts[i] for i in picks] + [model]


def _step_of(checkpoint: Path) -> str:
    if checkpoint.name.startswith("step-"):
        return str(int(checkpoint.name.split("-")[1]))
    summary = checkpoint.parent / "train_summary.json"
    if summary.is_file():
        return str(json.loads(summary.read_text()).get("step", "?"))
    return "?"


def evaluate(checkpoints: Sequence[str | Path], manifests: Sequence[str], bandwidths: Optional[Sequence[float]] = None,
             metrics: Sequence[str] = M.DEFAULT_METRICS, max_items: int = 30, max_seconds: Optional[float] = 10.0,
             jobs: int = 1, out: Optional[str | Path] = None, plots: bool = True,
             losses: Optional[str | Path] = None, oracles: bool = False, pitch: bool = True) -> dict:
    """Score `checkpoints` (the last in full) on the first `max_items` utterances of `manifests`.

    `losses`: the run's losses.jsonl; with `out` and plots, learning_curve.png draws its training loss
    above the scores of the checkpoints against their steps. `pitch`: every row's F0 error, GPE and VDE
    against the recordings' tracks (codec.evaluation.pitch) and pitch_spectrogram.png."""
    t0 = time.perf_counter()
    checkpoints = [Path(c) for c in checkpoints]
    cfg = load_codec_config(checkpoints[-1])
    bandwidths = [float(b) for b in (bandwidths or cfg.bandwidths)]
    metrics = M.check_metrics(metrics)
    available = M.available_metrics()
    for m in metrics:
        if not available[m]:
            log.warning("metric %s: package not installed, reported as missing (pip install the `eval` extra)", m)
    items = load_eval_set(list(manifests), cfg.sample_rate, max_items, max_seconds)
    if not items:
        raise ValueError(f"{', '.join(map(str, manifests))}: no utterances to evaluate")
    wavs = [np.ascontiguousarray(w[0, 0].numpy(), dtype=np.float32) for _, w in items]
    scorer = Scorer(cfg.sample_rate, metrics, jobs, pitch=pitch)
    ref_f0 = pitch_tracks(wavs, cfg.sample_rate) if pitch else None
    results, extra = [], {}
    try:
        for ck in checkpoints:
            full = ck == checkpoints[-1]
            res, ex = evaluate_checkpoint(ck, wavs, bandwidths, scorer, full=full, keep_audio=full and plots,
                                          oracles=oracles, ref_f0=ref_f0)
            results.append(res)
            extra = ex or extra
            for row in res.rows:
                log.info("%s step %s | %s | %s", ck, res.step, row.name, _fmt_scores(row, scorer.keys))
    finally:
        scorer.close()
    if extra:
        extra["ref_f0"] = ref_f0
    report = {"manifests": [str(m) for m in manifests], "items": len(items), "ids": [i for i, _ in items],
              "max_seconds": max_seconds, "sample_rate": cfg.sample_rate, "bandwidths": bandwidths,
              "metrics": list(metrics), "keys": scorer.keys, "available": available,
              "packages": M.package_versions(), "checkpoints": [asdict(r) for r in results], "pitch": pitch,
              "wall_seconds": time.perf_counter() - t0}
    if out is not None:
        out = Path(out)
        if plots and extra:
            if write_plots(out, results, scorer.keys, wavs, extra, cfg.sample_rate):
                report["pitch_plot"] = PITCH_PLOT
            if losses is not None and Path(losses).is_file():
                write_learning_curve(out / CURVE_PLOT, Path(losses), results, scorer.keys)
                report["learning_curve"] = CURVE_PLOT
        report["wall_seconds"] = time.perf_counter() - t0
        atomic_write_text(out.with_name(out.name + ".json"), json.dumps(report, indent=2) + "\n")
        atomic_write_text(out.with_name(out.name + ".md"), markdown_report(report, plots=plots and bool(extra),
                                                                           plot_dir=out.name))
    return report


# ------------------------------------------------------------------------------------------ CLI
def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m codec.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", action="append", help="model or checkpoint directory (repeatable; the last "
                                                           "is evaluated in full)")
    src.add_argument("--exp-dir", help="training run: score its model/ against earlier checkpoints "
                                       "(--curve-points) and plot its learning curve")
    p.add_argument("--manifest", action="append", required=True)
    p.add_argument("--bandwidths", type=float, nargs="+", default=None,
                   help="kbps (default: every bandwidth the model offers)")
    p.add_argument("--metrics", nargs="+", default=list(M.DEFAULT_METRICS), choices=M.METRICS,
                   help="default: %(default)s (visqol ~0.1 s and dnsmos 1-5 s a clip: add them when needed)")
    p.add_argument("--max-items", type=int, default=30)
    p.add_argument("--max-seconds", type=float, default=10.0)
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="metric worker processes")
    p.add_argument("--out", help="write OUT.json, OUT.md and plots in OUT/")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--oracles", action="store_true",
                   help="add ceiling rows: the reference's own STFT magnitude with a random and a Griffin-Lim "
                        "phase (codec.evaluation.oracle)")
    p.add_argument("--no-pitch", action="store_true",
                   help="leave out the F0 scores (cents, GPE, VDE) and the narrowband spectrograms")
    p.add_argument("--curve-points", type=int, default=3,
                   help="with --exp-dir: checkpoints scored, the exported model included (default 3: the first "
                        "saved checkpoint, one half-way, the model)")
    a = p.parse_args(argv)
    setup_logging()
    checkpoints = [Path(c) for c in a.checkpoint] if a.checkpoint else run_checkpoints(a.exp_dir, a.curve_points)
    report = evaluate(checkpoints, a.manifest, a.bandwidths, a.metrics, a.max_items, a.max_seconds, a.jobs,
                      a.out, plots=not a.no_plots, losses=Path(a.exp_dir) / "losses.jsonl" if a.exp_dir else None,
                      oracles=a.oracles, pitch=not a.no_pitch)
    print(markdown_report(report, plots=False))


if __name__ == "__main__":
    main()
