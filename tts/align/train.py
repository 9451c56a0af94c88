"""Train the CTC phoneme recognizer of the forced aligner on a code dump's utterances.

    python -m tts.align.train --train-dump data/codes/train-clean-100 --valid-dump data/codes/dev-clean \
        train.exp_dir=exp/aligner train.max_minutes=3
    accelerate launch -m tts.align.train --config conf.yaml ...      (like every training stage)
    python -m tts.align.train --train-manifest M.jsonl --train-phonemes P.jsonl ...   (no dump yet)

Config: AlignerConfig defaults, then each --config YAML, then `key=value` overrides (core.config);
--train-dump/--valid-dump/... are shortcuts for data.*. The feature frame rate comes from the dump
header (features.sample_rate / frame_rate; with manifests, from the config). Features of all
utterances are computed once into memory (optionally cached: data.feature_cache_dir). Batches: items
sorted by length, cut so that items x longest <= data.max_frames_per_batch, shuffled per epoch;
step s of rank r takes batch s * W + r of the epoch sequence (a function of the seed). AdamW with
warmup + cosine decay to train.max_steps; stops at max_steps or after max_minutes of wall time
(core.trainer.Budget). No mid-run checkpoints: a run is minutes long; rerun to redo it.

Files in train.exp_dir: model/ (config.json + model.safetensors; recognizer.load_recognizer),
losses.jsonl (one line a step), valid.jsonl (dev PER and CTC loss per validation), summary.json.
"""
from __future__ import annotations

from core.trainer import (Budget, LossLog, lr_at, make_accelerator, progress_bar,  # noqa: I001
                          seed_step, set_lr)
from core.training import run_cli

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ..config import OptimConfig  # noqa: E402
from core.logs import setup_logging  # noqa: E402
from core.config import ConfigError, load_config, to_dict  # noqa: E402
from core.io import atomic_write_text  # noqa: E402
from core.seeding import Stream, stream_rng  # noqa: E402

from .corpus import FeatureSet, compute_features, dump_utterances, manifest_utterances  # noqa: E402
from .features import FeatureConfig  # noqa: E402
from .model import CTCRecognizer, RecognizerConfig  # noqa: E402
from .phones import PhoneTable, split_tokens  # noqa: E402
from .recognizer import greedy_decode, phoneme_error_rate, save_recognizer  # noqa: E402
from .viterbi import ctc_feasible  # noqa: E402

log = logging.getLogger("tts.align.train")


@dataclass
class DataConfig:
    train_dump: Optional[str] = None         # a code dump (audio paths from its manifests)
    valid_dump: Optional[str] = None
    manifests: list[str] = field(default_factory=list)   # audio paths for the dumps (default: their headers)
    train_manifest: Optional[str] = None     # without a dump: a manifest + its phonemes file
    train_phonemes: Optional[str] = None
    valid_manifest: Optional[str] = None
    valid_phonemes: Optional[str] = None
    feature_cache_dir: Optional[str] = None  # .npz caches of the features (keyed by utterances + config)
    workers: int = 2                         # feature threads
    max_frames_per_batch: int = 5_000        # items x longest frames (small batches: more updates per minute)
    max_batch_size: int = 64
    valid_max_utterances: Optional[int] = None


def _optim_defaults() -> OptimConfig:
    # the TTS's optimizer settings with the aligner's defaults. The cosine schedule decays over the
    # run's progress, max(step / max_steps, minutes / max_minutes), so a wall-time budget ends at the
    # low learning rate as a step budget does (lr_of_step below)
    return OptimConfig(lr=3e-3, betas=(0.9, 0.98), weight_decay=0.01, warmup_steps=30, schedule="cosine",
                       min_lr_ratio=0.05, grad_clip=1.0)


@dataclass
class TrainConfig:
    exp_dir: str = "exp/aligner"
    seed: int = 1234
    max_steps: int = 2000
    max_minutes: Optional[float] = 3.0
    log_every: int = 25
    valid_every: int = 100                   # 0: only at the end
    threads: Optional[int] = None            # torch intra-op threads (None: leave as launched)


@dataclass
class AlignerConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: RecognizerConfig = field(default_factory=RecognizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=_optim_defaults)
    train: TrainConfig = field(default_factory=TrainConfig)


# -- data --------------------------------------------------------------------------------------------
@dataclass
class Split:
    """Features and CTC targets of one split, in memory."""
    feats: FeatureSet
    targets: list[np.ndarray]        # int64 label ids per item
    phonemes: list[str]


def load_split(name: str, dump: Optional[str], manifest: Optional[str], phonemes: Optional[str],
               cfg: AlignerConfig) -> tuple[Split, FeatureConfig, dict]:
    """Utterances of a dump (or manifest + phonemes) -> features + targets; infeasible items dropped."""
    dc = cfg.data
    feat_cfg = cfg.features
    counts: dict = {}
    if dump:
        utts, feat_cfg, counts = dump_utterances(dump, dc.manifests)
        feat_cfg = dataclasses.replace(cfg.features, sample_rate=feat_cfg.sample_rate,
                                       frame_rate=feat_cfg.frame_rate)
    elif manifest and phonemes:
        utts = manifest_utterances(manifest, phonemes)
    else:
        raise ConfigError(f"{name}: set data.{name}_dump, or data.{name}_manifest and data.{name}_phonemes")
    cache = None
    if dc.feature_cache_dir:
        Path(dc.feature_cache_dir).mkdir(parents=True, exist_ok=True)
        cache = Path(dc.feature_cache_dir) / f"{name}.npz"
    t0 = time.perf_counter()
    fs, errors = compute_features(utts, feat_cfg, dc.workers, cache)
    by_id = {u.id: u for u in utts}
    table = PhoneTable(cfg.model.phones)
    keep, targets, phon = [], [], []
    infeasible = 0
    if not fs.ids:          # before the run writes its logs: an empty or all-unreadable split is one line
        first = next(iter(errors.items()), None)
        raise ValueError(f"{name}: no usable utterance in {dump or manifest} ({len(utts)} listed with phonemes, "
                         f"{len(errors)} unreadable"
                         + (f"; first: {first[0]}: {first[1]}" if first else "") + f"; {counts or 'nothing skipped'})")
    for i, u in enumerate(fs.ids):
        try:
            tgt = np.asarray(table.encode(split_tokens(by_id[u].phonemes)), np.int64)
        except KeyError as e:
            raise ValueError(f"{name}: utterance {u}: {e.args[0]} (model.phones; the front end's symbols "
                             f"data_prep.symbols.SYMBOLS are the default)") from None
        if len(tgt) == 0 or not ctc_feasible(tgt, int(fs.lengths[i])):
            infeasible += 1
            continue
        keep.append(i)
        targets.append(tgt)
        phon.append(by_id[u].phonemes)
    if len(keep) != len(fs):
        fs = FeatureSet([fs.ids[i] for i in keep], np.concatenate([fs.get(i) for i in keep], axis=1),
                        np.concatenate([[0], np.cumsum([fs.lengths[i] for i in keep])]).astype(np.int64))
    counts = {**counts, "unreadable": len(errors), "infeasible_or_empty": infeasible, "used": len(fs)}
    if not len(fs):
        raise ValueError(f"{name}: no utterance has phones that fit its frames ({counts})")
    log.info("%s: %d utterances, %d frames (%.2f h) in %.1f s; %s", name, len(fs), fs.feats.shape[1],
             fs.feats.shape[1] / feat_cfg.frame_rate / 3600, time.perf_counter() - t0, counts)
    return Split(fs, targets, phon), feat_cfg, counts


def make_batches(lengths: np.ndarray, max_frames: int, max_items: int) -> list[np.ndarray]:
    """Positions sorted by length, cut so that items x longest <= max_frames (and <= max_items)."""
    order = np.argsort(lengths, kind="stable")
    batches, cur, longest = [], [], 0
    for i in order:
        n = int(lengths[i])
        if cur and (len(cur) >= max_items or max(longest, n) * (len(cur) + 1) > max_frames):
            batches.append(np.asarray(cur))
            cur, longest = [], 0
        cur.append(int(i))
        longest = max(longest, n)
    if cur:
        batches.append(np.asarray(cur))
    return batches


def batch_for(batches: list[np.ndarray], seed: int, index: int) -> np.ndarray:
    """The `index`-th batch of the endless sequence of shuffled epochs (a function of seed and index)."""
    epoch, k = divmod(index, len(batches))
    order = stream_rng(seed, Stream.ALIGN_ORDER, epoch).permutation(len(batches))
    return batches[order[k]]


def collate(split: Split, items: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(feats [B, M, T], lengths [B], targets concatenated [sum N], target lengths [B])."""
    lengths = torch.tensor([int(split.feats.lengths[i]) for i in items], dtype=torch.long)
    x = torch.zeros(len(items), split.feats.feats.shape[0], int(lengths.max()))
    for b, i in enumerate(items):
        x[b, :, :lengths[b]] = torch.from_numpy(split.feats.get(i))
    tg = [torch.from_numpy(split.targets[i]) for i in items]
    return x, lengths, torch.cat(tg), torch.tensor([len(t) for t in tg], dtype=torch.long)


def ctc_loss(log_probs: torch.Tensor, lengths, targets, target_lengths) -> torch.Tensor:
    """Mean over items of the CTC loss per target phone. log_probs [B, T, V]."""
    return F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths, blank=0,
                      reduction="mean", zero_infinity=True)


@torch.inference_mode()
def evaluate(model: CTCRecognizer, split: Split, max_frames: int = 20_000) -> dict:
    """Dev PER (greedy CTC vs the pronounced phones) and CTC loss per phone."""
    was = model.training
    model.eval()
    table = PhoneTable(model.config.phones)
    refs, hyps, loss_sum, n = [], [], 0.0, 0
    for items in make_batches(split.feats.lengths, max_frames, 64):
        x, lengths, tg, tl = collate(split, items)
        lp = model(x, lengths)
        loss_sum += float(ctc_loss(lp, lengths, tg, tl)) * len(items)
        n += len(items)
        for i, ids in zip(items, greedy_decode(lp, lengths)):
            refs.append(table.decode(split.targets[i].tolist()))
            hyps.append(table.decode(ids))
    model.train(was)
    return {"per": phoneme_error_rate(refs, hyps), "loss": loss_sum / max(n, 1), "utterances": n}


# -- training ------------------------------------------------------------------------------------------
def scheduled_lr(step: int, minutes: float, cfg: AlignerConfig) -> float:
    """Warmup over optim.warmup_steps, then the schedule over the progress max(step / max_steps,
    minutes / max_minutes) (core.trainer.lr_at on a 10,000-point progress scale)."""
    oc, tc = cfg.optim, cfg.train
    if step < oc.warmup_steps or oc.schedule != "cosine":
        return lr_at(step, oc.lr, oc.warmup_steps, oc.schedule, tc.max_steps, oc.min_lr_ratio)
    p = step / max(1, tc.max_steps)
    if tc.max_minutes:
        p = max(p, minutes / tc.max_minutes)
    scale = 10_000
    pos = oc.warmup_steps + int(min(1.0, p) * (scale - oc.warmup_steps))
    return lr_at(pos, oc.lr, oc.warmup_steps, "cosine", scale, oc.min_lr_ratio)


def load_splits(cfg: AlignerConfig) -> tuple[AlignerConfig, Split, Optional[Split], dict]:
    """(the config with the dump's feature framing, the training split, the dev split or None,
    {"train": counts, "valid": counts or None}); data.valid_max_utterances keeps evenly spaced items."""
    dc = cfg.data
    train_split, feat_cfg, train_counts = load_split("train", dc.train_dump, dc.train_manifest, dc.train_phonemes, cfg)
    valid_split, valid_counts = None, None
    if dc.valid_dump or dc.valid_manifest:
        valid_split, vfeat, valid_counts = load_split("valid", dc.valid_dump, dc.valid_manifest, dc.valid_phonemes,
                                                      dataclasses.replace(cfg, features=feat_cfg))
        if (vfeat.sample_rate, vfeat.frame_rate) != (feat_cfg.sample_rate, feat_cfg.frame_rate):
            raise ConfigError(f"train and valid dumps have different codec framing: {feat_cfg} vs {vfeat}")
        if dc.valid_max_utterances:
            n = min(dc.valid_max_utterances, len(valid_split.feats))
            keep = np.linspace(0, len(valid_split.feats) - 1, n).round().astype(int)
            fs = valid_split.feats
            valid_split = Split(FeatureSet([fs.ids[i] for i in keep], np.concatenate([fs.get(i) for i in keep], 1),
                                           np.concatenate([[0], np.cumsum(fs.lengths[keep])]).astype(np.int64)),
                                [valid_split.targets[i] for i in keep], [valid_split.phonemes[i] for i in keep])
    cfg = dataclasses.replace(cfg, features=feat_cfg,
                              model=dataclasses.replace(cfg.model, n_mels=feat_cfg.n_mels))
    return cfg, train_split, valid_split, {"train": train_counts, "valid": valid_counts}


def build_optimizer(model: torch.nn.Module, oc: OptimConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norms (tensors of one dimension)."""
    decay = [p for n_, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n_, p in model.named_parameters() if p.dim() <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": oc.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=oc.lr, betas=oc.betas)


# Its own loop rather than core.training.TrainingRun: a run is minutes long, so it has no checkpoints,
# no resume and no non-finite skip (a non-finite gradient only skips the optimizer step), and its
# learning rate follows the wall clock (scheduled_lr).
def fit(cfg: AlignerConfig, accelerator, model, optimizer, train_split: Split, valid_split: Optional[Split]) -> dict:
    """Train until the budget stops the run; validate every train.valid_every steps and at the end.
    Returns {"step", "reason", "minutes", "epochs", "history" (the validations)}."""
    tc, oc, dc = cfg.train, cfg.optim, cfg.data
    exp_dir, rank, world, main = (Path(tc.exp_dir), accelerator.process_index, accelerator.num_processes,
                                  accelerator.is_main_process)
    raw = accelerator.unwrap_model(model)
    batches = make_batches(train_split.feats.lengths, dc.max_frames_per_batch, dc.max_batch_size)
    budget = Budget(tc.max_steps, tc.max_minutes)
    budget.start()
    losses = LossLog(exp_dir / "losses.jsonl", main)
    valids = LossLog(exp_dir / "valid.jsonl", main)
    for f in ("losses.jsonl", "valid.jsonl"):        # a new run starts new logs
        if main:
            (exp_dir / f).write_text("")
    bar = progress_bar(budget, 0, main and sys.stderr.isatty(), desc="aligner")
    history, step, reason, frames_seen = [], 0, None, 0
    total_frames = train_split.feats.feats.shape[1]

    def validate() -> None:
        if valid_split is None:
            return
        r = {"step": step, "minutes": round(budget.minutes, 3), "epochs": round(frames_seen / max(1, total_frames), 3),
             **evaluate(raw, valid_split)}
        history.append(r)
        valids.write(r)
        log.info("step %d (%.2f min, %.2f epochs): dev PER %.4f, CTC loss %.3f", step, r["minutes"], r["epochs"],
                 r["per"], r["loss"])

    model.train()
    while True:
        reason = budget.stop_reason(accelerator, step)
        if reason:
            break
        seed_step(tc.seed, step, rank)
        lr = scheduled_lr(step, budget.minutes, cfg)
        set_lr(optimizer, lr)
        items = batch_for(batches, tc.seed, step * world + rank)
        x, lengths, tg, tl = collate(train_split, items)
        lp = model(x.to(accelerator.device), lengths.to(accelerator.device))
        loss = ctc_loss(lp, lengths, tg, tl)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        gnorm = float(accelerator.clip_grad_norm_(model.parameters(), oc.grad_clip))
        if math.isfinite(gnorm):
            optimizer.step()
        step += 1
        frames_seen += int(lengths.sum()) * world
        lv = float(loss.detach())        # (float() of a tensor that requires grad warns every run)
        losses.write({"step": step, "loss": lv, "lr": lr, "grad_norm": gnorm,
                      "frames": int(lengths.sum()), "minutes": round(budget.minutes, 4)})
        bar.update(1)
        bar.set_postfix(loss=f"{lv:.3f}")
        if tc.log_every and step % tc.log_every == 0:
            log.info("step %d: loss %.3f, lr %.2e, grad norm %.2f, %.2f min", step, lv, lr, gnorm, budget.minutes)
        if tc.valid_every and step % tc.valid_every == 0:
            validate()
    bar.close()
    train_minutes = budget.minutes
    if not history or history[-1]["step"] != step:
        validate()
    return {"step": step, "reason": reason, "minutes": train_minutes, "epochs": frames_seen / total_frames,
            "history": history}


def train(cfg: AlignerConfig) -> dict:
    tc, dc = cfg.train, cfg.data
    if tc.threads:
        torch.set_num_threads(tc.threads)
    exp_dir = Path(tc.exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    accelerator = make_accelerator(exp_dir)
    setup_logging(rank=accelerator.process_index)
    t_start = time.time()
    cfg, train_split, valid_split, counts = load_splits(cfg)
    data_minutes = (time.time() - t_start) / 60

    torch.manual_seed(tc.seed)
    model = CTCRecognizer(cfg.model)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("recognizer: %.2f M parameters, %d labels; %d threads", n_params / 1e6, cfg.model.num_labels,
             torch.get_num_threads())
    optimizer = build_optimizer(model, cfg.optim)
    model, optimizer = accelerator.prepare(model, optimizer)
    run = fit(cfg, accelerator, model, optimizer, train_split, valid_split)

    history = run["history"]
    summary = {"steps": run["step"], "stop_reason": run["reason"], "train_minutes": round(run["minutes"], 3),
               "data_minutes": round(data_minutes, 3), "epochs": round(run["epochs"], 3),
               "threads": torch.get_num_threads(), "world_size": accelerator.num_processes, "parameters": n_params,
               "train_data": counts["train"], "valid_data": counts["valid"],
               "final_valid": history[-1] if history else None}
    if accelerator.is_main_process:
        save_recognizer(accelerator.unwrap_model(model), cfg.features, exp_dir / "model",
                        training={**summary, "train_dump": dc.train_dump, "valid_dump": dc.valid_dump,
                                  "train_manifest": dc.train_manifest},
                        config=to_dict(cfg))
        atomic_write_text(exp_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        log.info("wrote %s (%s)", exp_dir / "model", json.dumps(summary.get("final_valid")))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


def main(argv: Optional[list[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tts.align.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", default=[], help="YAML override file(s), applied in order")
    for k in ("train-dump", "valid-dump", "train-manifest", "train-phonemes", "valid-manifest", "valid-phonemes"):
        p.add_argument(f"--{k}", default=None, help=f"shortcut for data.{k.replace('-', '_')}")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.max_minutes=3")
    args = p.parse_args(argv)
    short = [f"data.{k}={v}" for k, v in vars(args).items()
             if k not in ("config", "overrides") and v is not None]
    run_cli(lambda: train(load_config(AlignerConfig, args.config, [*short, *args.overrides])))


if __name__ == "__main__":
    main()
