"""Train the NDVQ codec: one readable loop under Hugging Face Accelerate.

    python -m codec.train --config egs/libritts/conf/codec_mini.yaml train.max_steps=2000
    accelerate launch --multi_gpu --num_processes 8 -m codec.train --config egs/libritts/conf/codec_paper.yaml

Resumes automatically from the newest checkpoint in `train.exp_dir`. Resume is exact (a run killed
and resumed repeats the uninterrupted run's losses step for step) because every random draw of step
s is derived from (seed, s, rank): the data crops (codec/data.py), the bandwidth (seed, s; the same on
every rank) and the torch RNG, re-seeded at the start of every step. The python/numpy/torch RNG states
are also saved and restored for anything outside the loop.

Files written to exp_dir: checkpoints/, model/ (the final exported model), losses.jsonl (one line per
step, main process), eval.jsonl, train_summary.json, config.json, and TensorBoard logs under tb/.

Discriminator schedule (DECISION, see LossConfig): frozen for `disc_start` steps, then updated every
`disc_every` steps; the adversarial and feature losses join L_G from `disc_start` on. The mini config
turns it off for 10-minute CPU runs.

Debug hooks (environment variables, used by tests):
    NDVQ_DEBUG_NAN_STEPS="3,4"   make the generator loss NaN at these steps (the step is skipped)
    NDVQ_DEBUG_STEP_SLEEP=0.3    sleep this many seconds after every step (lets a test kill a run mid-way)
    NDVQ_DEBUG_DIGEST=1          every rank writes exp_dir/digest-rank{r}.json (hash of its weights,
                                 buffers and codebooks) at the end
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import sys
import time
from pathlib import Path

# OpenMP waiting for shared cores. libgomp reads these once, when torch loads it, so they are set
# before `import torch`; an OMP_WAIT_POLICY or GOMP_SPINCOUNT already in the environment wins. Why: the
# 2 cores of a CPU box are usually shared (an inference benchmark, a data job). libgomp's default
# spins ~3 ms at every barrier before sleeping; when one thread of the pair has been descheduled, its
# partner burns the core the other needs, and the mini config took 3-8 s a step instead of ~0.5 s
# whenever another multi-threaded process ran. Measured interleaved on this box (mini, 2 threads):
#                    next to 2-thread torch jobs   next to 1 busy thread   idle
#   default (spin)          3.1 s                         1.20 s            0.42 s
#   passive                 0.84 s                        0.85 s            0.56 s
#   spin 1000 (~10 us)      0.89 s                        0.92 s            0.48 s
# so a short spin keeps nearly all of passive's gain under load and most of spinning's speed when
# idle. PASSIVE covers OpenMP runtimes other than libgomp. Scheduling only: results do not change.
OMP_SPIN_COUNT = 1000
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["GOMP_SPINCOUNT"] = str(OMP_SPIN_COUNT)     # libgomp: overrides the policy's spin count of 0

import numpy as np  # noqa: E402  (after the OpenMP setting above)
import torch  # noqa: E402
from accelerate import Accelerator, DistributedDataParallelKwargs  # noqa: E402
from tqdm import tqdm  # noqa: E402

from .build import build_codec, build_discriminator, build_mel_loss
from .config import CodecConfig
from .data import build_train_loader, load_eval_set
from .losses import (feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss,
                     mel_distance)
from .utils.checkpoint import (capture_rng_state, export_codec, latest_checkpoint, load_checkpoint,
                               restore_rng_state, save_checkpoint)
from .utils.config import load_config, save_config, to_dict

log = logging.getLogger("codec.train")

# Flush denormals to zero before any parallel op creates the intra-op thread pool (its threads inherit
# the flag from this thread): tiny early activations/gradients otherwise made CPU steps ~10x slower
# with 2 threads (measured: 10 s vs 0.55 s a step on the mini config). Kept as a guard: re-measured on
# this box's AMD EPYC (interleaved, 30 warm steps) it made no difference (0.90 vs 0.89 s), and the
# 10x slow steps seen since came from OpenMP spin-waiting on shared cores (see OMP_SPIN_COUNT above).
torch.set_flush_denormal(True)
torch.set_num_threads(torch.get_num_threads())

EVAL_MAX_SECONDS = 4.0


class TrainingDiverged(RuntimeError):
    """Too many non-finite steps in a row."""


# -- small helpers ---------------------------------------------------------------------------------
def lr_at(step: int, base: float, warmup: int) -> float:
    """Linear warmup over `warmup` steps, then constant."""
    return base * min(1.0, (step + 1) / warmup) if warmup > 0 else base


def bandwidth_at(step: int, seed: int, bandwidths: tuple[float, ...]) -> float:
    """The bandwidth of `step`: a function of (seed, step) only, so every rank draws the same."""
    return random.Random(seed * 1_000_003 + step).choice(list(bandwidths))


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.default_rng([seed, 2, step, rank]).integers(0, 2 ** 62))


def state_digest(module: torch.nn.Module) -> dict:
    """sha256 of every tensor in the state dict (parameters and buffers, e.g. codebooks)."""
    h = hashlib.sha256()
    per = {}
    for name, t in sorted(module.state_dict().items()):
        b = t.detach().cpu().contiguous().numpy().tobytes()
        h.update(name.encode())
        h.update(b)
        if "quantizer" in name:
            per[name] = hashlib.sha256(b).hexdigest()[:16]
    return {"all": h.hexdigest(), "quantizer": per}


def _truncate_jsonl(path: Path, before_step: int) -> None:
    """Drop lines of steps >= before_step (written by a run killed after its last checkpoint)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] < before_step]
    path.write_text("".join(ln + "\n" for ln in keep))


def _mel_image(wav: torch.Tensor, sample_rate: int) -> np.ndarray:
    """A log-mel spectrogram as a [1, H, W] image in [0, 1] (low frequencies at the bottom)."""
    from .spectral import MelSpectrogram, log_mel
    m = log_mel(MelSpectrogram(sample_rate, 1024, 256, 80)(wav.reshape(1, -1).float()))[0]
    m = (m - m.min()) / (m.max() - m.min() + 1e-8)
    return m.flip(0)[None].numpy()


@torch.no_grad()
def evaluate_codec(model, items: list[tuple[str, torch.Tensor]], bandwidths, sample_rate: int,
                   device="cpu") -> tuple[dict[float, float], dict]:
    """Mean mel distance over `items` at each bandwidth (eval mode: the codes' means), and examples."""
    was_training = model.training
    model.eval()
    result, examples = {}, {}
    for bw in bandwidths:
        n_q = model.n_q_for_bandwidth(bw)
        dists = []
        for i, (_, wav) in enumerate(items):
            wav = wav.to(device)
            out = model(wav, n_q)
            dists.append(float(mel_distance(out.audio, wav, sample_rate)))
            if i == 0:
                examples[bw] = out.audio[0, 0].float().cpu()
        result[bw] = float(np.mean(dists)) if dists else float("nan")
    model.train(was_training)
    return result, examples


# -- the loop --------------------------------------------------------------------------------------
def train(cfg: CodecConfig) -> dict:
    tc, oc, lc = cfg.train, cfg.optim, cfg.loss
    exp_dir = Path(tc.exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(
        mixed_precision=tc.mixed_precision, log_with="tensorboard", project_dir=str(exp_dir),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        cpu=os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"),
    )
    torch.set_flush_denormal(True)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    device = accelerator.device
    logging.basicConfig(level=logging.INFO if main else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(name)s: %(message)s")
    step_sleep = float(os.environ.get("NDVQ_DEBUG_STEP_SLEEP", "0") or 0)
    nan_steps = {int(s) for s in os.environ.get("NDVQ_DEBUG_NAN_STEPS", "").split(",") if s.strip()}

    # Model, discriminator, losses, optimizers. Same seed on every rank (DDP broadcasts anyway).
    torch.manual_seed(tc.seed)
    model = build_codec(cfg)
    cfg = model.config                      # build_codec may align quantizer.dimension
    disc = build_discriminator(cfg)
    mel_loss = build_mel_loss(cfg).to(device)
    # AdamW: decoupled weight decay, as the authors' fairseq Adam. torch.optim.Adam(weight_decay=...)
    # is coupled L2: wherever a gradient is below wd*|w| Adam's normalised step becomes ~ -lr*sign(w),
    # which pulled codebooks and weight-norm directions to zero and held the mini codec near its
    # no-information floor (STOI 0.60 vs 0.74 decoupled, issue 8).
    opt_g = torch.optim.AdamW(model.parameters(), lr=oc.lr, betas=tuple(oc.betas), eps=oc.eps,
                              weight_decay=oc.weight_decay)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=oc.disc_lr, betas=tuple(oc.betas), eps=oc.eps,
                              weight_decay=oc.weight_decay)

    # Resume from the newest checkpoint, if any (weights before prepare, optimizer states after).
    step, counters, state = 0, {"bad_steps_total": 0, "bad_in_row": 0, "disc_updates": 0}, None
    ckpt = latest_checkpoint(exp_dir)
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, disc)
        step, counters = int(state["step"]), dict(state["counters"])
        log.info("resuming from %s (step %d)", ckpt, step)
    model, disc, opt_g, opt_d = accelerator.prepare(model, disc, opt_g, opt_d)
    if state is not None:
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        restore_rng_state(state["rng"])
    raw_model, raw_disc = accelerator.unwrap_model(model), accelerator.unwrap_model(disc)

    if main:
        save_config(cfg, exp_dir / "config.json")
        _truncate_jsonl(exp_dir / "losses.jsonl", step)
        _truncate_jsonl(exp_dir / "eval.jsonl", step)
    accelerator.init_trackers("tb", config={k: v for k, v in _flat(to_dict(cfg)).items()})
    writer = accelerator.get_tracker("tensorboard").writer if main else None
    loader = build_train_loader(cfg, rank, world, start_step=step)
    eval_items = (load_eval_set(cfg.data.valid_manifests, cfg.sample_rate, cfg.data.valid_items, EVAL_MAX_SECONDS)
                  if main and cfg.data.valid_manifests else [])
    losses_file = open(exp_dir / "losses.jsonl", "a") if main else None

    def checkpoint(at_step: int) -> None:
        accelerator.wait_for_everyone()
        if main:
            st = {"step": at_step, "counters": counters, "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                  "rng": capture_rng_state(), "data": {"next_step": at_step, "seed": tc.seed, "world_size": world}}
            path = save_checkpoint(exp_dir, at_step, raw_model, raw_disc, cfg, st, tc.keep_last)
            log.info("saved %s", path)
        accelerator.wait_for_everyone()

    def run_eval(at_step: int) -> dict:
        if not main or not eval_items:
            return {}
        res, examples = evaluate_codec(raw_model, eval_items, cfg.bandwidths, cfg.sample_rate, device)
        accelerator.log({f"eval/mel_distance_{bw:g}kbps": v for bw, v in res.items()}, step=at_step)
        if at_step == 0 or not (exp_dir / ".eval_ref_written").exists():
            ref = eval_items[0][1][0, 0]
            writer.add_audio("eval/reference", ref.numpy(), at_step, cfg.sample_rate)
            writer.add_image("eval/reference_mel", _mel_image(ref, cfg.sample_rate), at_step)
            (exp_dir / ".eval_ref_written").touch()
        for bw, wav in examples.items():
            writer.add_audio(f"eval/decoded_{bw:g}kbps", wav.clamp(-1, 1).numpy(), at_step, cfg.sample_rate)
            writer.add_image(f"eval/decoded_{bw:g}kbps_mel", _mel_image(wav, cfg.sample_rate), at_step)
        with open(exp_dir / "eval.jsonl", "a") as fh:
            fh.write(json.dumps({"step": at_step, "mel_distance": {f"{bw:g}": v for bw, v in res.items()}}) + "\n")
        log.info("eval step %d: %s", at_step, ", ".join(f"{bw:g} kbps {v:.4f}" for bw, v in res.items()))
        return res

    start_step, t0 = step, time.time()
    # A wall-time budget (max_minutes) usually ends the run long before max_steps: no step-based ETA then.
    pbar = tqdm(total=tc.max_steps if tc.max_minutes is None else None, initial=step, disable=not main,
                dynamic_ncols=True, desc="train")
    model.train()
    disc.train()
    stop_reason, last_eval = "max_steps", {}
    t_ready = time.perf_counter()
    for wav in loader:
        t_step = time.perf_counter()
        data_s = t_step - t_ready             # time spent waiting for the DataLoader
        wav = wav.to(device)
        torch.manual_seed(step_seed(tc.seed, step, rank))
        bw = bandwidth_at(step, tc.seed, tc.bandwidths)
        n_q = cfg.n_q_for_bandwidth(bw)
        lr = lr_at(step, oc.lr, oc.warmup_steps)
        for g in opt_g.param_groups:
            g["lr"] = lr
        gan_on = step >= lc.disc_start

        # ---- generator ----
        out = model(wav, n_q)
        l_time = (out.audio - wav).abs().mean()
        l_mel = mel_loss(out.audio, wav)
        l_quant = out.quant_loss
        loss_g = lc.time * l_time + lc.mel * l_mel + lc.quant * l_quant
        l_adv = l_feat = torch.zeros((), device=device)
        if gan_on:
            raw_disc.requires_grad_(False)      # no DDP pass: the generator step does not touch D's grads
            fake_logits, fake_feats = raw_disc(out.audio)
            with torch.no_grad():
                _, real_feats = raw_disc(wav)
            raw_disc.requires_grad_(True)
            l_adv = hinge_generator_loss(fake_logits)
            l_feat = feature_matching_loss(real_feats, fake_feats)
            loss_g = loss_g + lc.adv * l_adv + lc.feat * l_feat
        if step in nan_steps:
            loss_g = loss_g * float("nan")

        # Non-finite loss on any rank -> every rank skips (decided together, or DDP would hang).
        bad = accelerator.reduce(torch.tensor(float(not torch.isfinite(loss_g)), device=device), "sum") > 0
        grad_norm = torch.tensor(float("nan"))
        if not bad:
            opt_g.zero_grad(set_to_none=True)
            accelerator.backward(loss_g)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), oc.grad_clip)
            bad = not torch.isfinite(grad_norm)     # identical on every rank (grads are all-reduced)
            if not bad:
                opt_g.step()
        opt_g.zero_grad(set_to_none=True)

        # ---- discriminator ----
        loss_d = torch.zeros((), device=device)
        if not bad and gan_on and (step - lc.disc_start) % lc.disc_every == 0:
            logits, _ = disc(torch.cat([wav, out.audio.detach()], 0))
            B = wav.shape[0]
            loss_d = hinge_discriminator_loss([lg[:B] for lg in logits], [lg[B:] for lg in logits])
            opt_d.zero_grad(set_to_none=True)
            accelerator.backward(loss_d)
            accelerator.clip_grad_norm_(disc.parameters(), oc.grad_clip)
            opt_d.step()
            opt_d.zero_grad(set_to_none=True)
            counters["disc_updates"] += 1

        # ---- bookkeeping ----
        if bad:
            counters["bad_steps_total"] += 1
            counters["bad_in_row"] += 1
            log.warning("step %d: non-finite loss or gradient, step skipped (%d in a row, %d total)",
                        step, counters["bad_in_row"], counters["bad_steps_total"])
            if counters["bad_in_row"] >= tc.max_bad_steps:
                raise TrainingDiverged(f"{counters['bad_in_row']} non-finite steps in a row (last at step {step}); "
                                       f"lower optim.lr, raise optim.warmup_steps, or check the data")
        else:
            counters["bad_in_row"] = 0
        parts = torch.stack([loss_g.detach(), l_time.detach(), l_mel.detach(), l_quant.detach(),
                             l_adv.detach(), l_feat.detach(), loss_d.detach()]).float()
        parts = accelerator.reduce(parts, "mean").tolist()
        row = dict(zip(["loss_g", "time", "mel", "quant", "adv", "feat", "loss_d"], parts))
        row = {"step": step, "bw": bw, "n_q": n_q, "lr": lr, **row, "grad_norm": float(grad_norm), "skipped": bool(bad),
               "step_s": time.perf_counter() - t_step, "data_s": data_s}
        if main:
            losses_file.write(json.dumps(row) + "\n")
            losses_file.flush()
            pbar.set_postfix(loss=f"{row['loss_g']:.3f}", mel=f"{row['mel']:.3f}", bw=bw)
            pbar.update(1)
            if step % tc.log_every == 0:
                logs = {f"train/{k}": v for k, v in row.items() if k not in ("step", "skipped") and math.isfinite(v)}
                logs.update({f"train/{k}": float(v) for k, v in out.metrics.items()})
                logs["train/bad_steps_total"] = counters["bad_steps_total"]
                accelerator.log(logs, step=step)
        step += 1
        if step_sleep:
            time.sleep(step_sleep)

        # ---- stop / checkpoint / eval ----
        timed_out = tc.max_minutes is not None and (time.time() - t0) / 60 >= tc.max_minutes
        timed_out = bool(accelerator.reduce(torch.tensor(float(timed_out), device=device), "sum") > 0)
        done = timed_out or step >= tc.max_steps
        if tc.eval_every and step % tc.eval_every == 0:
            last_eval = run_eval(step) or last_eval
            accelerator.wait_for_everyone()
        if done or (tc.ckpt_every and step % tc.ckpt_every == 0):
            checkpoint(step)
        if done:
            stop_reason = "max_minutes" if timed_out else "max_steps"
            break
        t_ready = time.perf_counter()
    pbar.close()
    if step >= tc.max_steps and step == start_step:
        log.info("nothing to do: step %d >= max_steps %d", step, tc.max_steps)

    # ---- the end: final eval, export, summary ----
    if main and eval_items and (not tc.eval_every or step % tc.eval_every != 0):
        last_eval = run_eval(step)
    summary = {}
    if main:
        losses_file.close()
        export_codec(raw_model, exp_dir / "model")
        summary = {"step": step, "stop_reason": stop_reason, "world_size": world,
                   "minutes": (time.time() - t0) / 60, "steps_this_run": step - start_step,
                   "counters": counters, "eval_mel_distance": {f"{k:g}": v for k, v in last_eval.items()},
                   "num_parameters": sum(p.numel() for p in raw_model.parameters())}
        (exp_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if os.environ.get("NDVQ_DEBUG_DIGEST"):
        (exp_dir / f"digest-rank{rank}.json").write_text(json.dumps(state_digest(raw_model)))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


def _flat(d: dict, prefix: str = "") -> dict:
    """Flatten a config dict for TensorBoard's hparams (lists become strings)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, (int, float, str, bool)):
            out[key] = v
        else:
            out[key] = str(v)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", default=[], help="YAML override file(s), applied in order")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.max_steps=100")
    args = p.parse_args(argv)
    cfg = load_config(CodecConfig, args.config, args.overrides)
    try:
        train(cfg)
    except TrainingDiverged as e:
        logging.getLogger("codec.train").error("%s", e)
        sys.exit(2)


if __name__ == "__main__":
    main()
