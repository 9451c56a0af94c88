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
import json
import logging
import math
import random
import sys
import time
from pathlib import Path

# The shared training plumbing first: it sets the OpenMP waiting policy before torch is imported.
from core.trainer import (Budget, DebugHooks, LossLog, StepGuard, TrainingDiverged, any_rank,  # noqa: I001
                            init_trackers, lr_at, make_accelerator, progress_bar, restore_training_state,
                            seed_step, set_lr, training_state, truncate_jsonl)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from .build import build_codec, build_discriminator, build_mel_loss, build_stft_loss
from .config import CodecConfig
from .data import build_train_loader, load_eval_set
from .losses import (feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss,
                     mel_distance)
from .phase_losses import CompressedComplexLoss, PhaseLoss
from core.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

from .checkpoint import export_codec
from core.logs import setup_logging  # noqa: E402
from core.config import load_config, save_config, to_dict

log = logging.getLogger("codec.train")

torch.set_flush_denormal(True)      # why: core.trainer
torch.set_num_threads(torch.get_num_threads())

EVAL_MAX_SECONDS = 4.0


def build_phase_loss(cfg: CodecConfig, model: torch.nn.Module) -> PhaseLoss | None:
    """The head-phase losses (`loss.phase_ip/gd/iaf` > 0), or None. Turns on the iSTFT head's
    `keep_spectrum` so each training forward leaves its predicted phase for the loss."""
    lc = cfg.loss
    if not (lc.phase_ip or lc.phase_gd or lc.phase_iaf):
        return None
    if cfg.seanet.decoder != "istft":
        raise ValueError("loss.phase_ip/phase_gd/phase_iaf need the iSTFT head's phase (seanet.decoder=istft)")
    head = model.decoder.post[-1]
    head.keep_spectrum = True
    head.keep_detached = not lc.phase_trunk_grad
    return PhaseLoss(head.n_fft, head.sub_hop, lc.phase_weighting)


def build_complex_loss(cfg: CodecConfig) -> CompressedComplexLoss | None:
    lc = cfg.loss
    return CompressedComplexLoss(lc.complex_scales, lc.complex_compress) if lc.complex > 0 else None


# -- small helpers ---------------------------------------------------------------------------------
def bandwidth_at(step: int, seed: int, bandwidths: tuple[float, ...], full_prob: float = 0.0) -> float:
    """The bandwidth of `step`: a function of (seed, step) only, so every rank draws the same.

    With probability `full_prob` the largest (every stage trains), otherwise uniform over `bandwidths`.
    """
    if not 0.0 <= full_prob <= 1.0:
        raise ValueError(f"train.full_bandwidth_prob={full_prob}: expected a probability in [0, 1]")
    rng = random.Random(seed * 1_000_003 + step)
    if full_prob > 0 and rng.random() < full_prob:     # no extra draw at 0: old runs replay exactly
        return max(bandwidths)
    return rng.choice(list(bandwidths))


def build_optimizers(model: torch.nn.Module, disc: torch.nn.Module, oc) -> tuple[torch.optim.Optimizer, ...]:
    """Generator and discriminator optimizers: AdamW, i.e. decoupled weight decay as the authors' fairseq
    Adam. torch.optim.Adam(weight_decay=...) is coupled L2: wherever a gradient is below wd*|w|, Adam's
    normalised step becomes about -lr*sign(w), which pulled codebooks and weight-norm directions to zero
    and held the mini codec near its no-information floor (STOI 0.60 vs 0.74 decoupled, issue 8)."""
    opt_g = torch.optim.AdamW(model.parameters(), lr=oc.lr, betas=tuple(oc.betas), eps=oc.eps,
                              weight_decay=oc.weight_decay)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=oc.disc_lr, betas=tuple(oc.betas), eps=oc.eps,
                              weight_decay=oc.weight_decay)
    return opt_g, opt_d


def _mel_image(wav: torch.Tensor, sample_rate: int) -> np.ndarray:
    """A log-mel spectrogram as a [1, H, W] image in [0, 1] (low frequencies at the bottom)."""
    from .models.spectral import MelSpectrogram, log_mel
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
    accelerator = make_accelerator(exp_dir, tc.mixed_precision, find_unused_parameters=True)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    device = accelerator.device
    setup_logging(rank=accelerator.process_index)
    debug = DebugHooks.from_env()

    # Model, discriminator, losses, optimizers. Same seed on every rank (DDP broadcasts anyway).
    torch.manual_seed(tc.seed)
    model = build_codec(cfg)
    cfg = model.config                      # build_codec may align quantizer.dimension
    disc = build_discriminator(cfg)
    mel_loss = build_mel_loss(cfg).to(device)
    stft_loss = build_stft_loss(cfg)
    stft_loss = stft_loss.to(device) if stft_loss is not None else None
    phase_loss = build_phase_loss(cfg, model)
    phase_loss = phase_loss.to(device) if phase_loss is not None else None
    complex_loss = build_complex_loss(cfg)
    complex_loss = complex_loss.to(device) if complex_loss is not None else None
    opt_g, opt_d = build_optimizers(model, disc, oc)

    # Resume from the newest checkpoint, if any (weights before prepare, optimizer states after).
    step, counters, state = 0, {"bad_steps_total": 0, "bad_in_row": 0, "disc_updates": 0}, None
    ckpt = latest_checkpoint(exp_dir)
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, disc)
        step, counters = int(state["step"]), dict(state["counters"])
        log.info("resuming from %s (step %d)", ckpt, step)
    model, disc, opt_g, opt_d = accelerator.prepare(model, disc, opt_g, opt_d)
    if state is not None:
        restore_training_state(state, {"opt_g": opt_g, "opt_d": opt_d})
    guard = StepGuard(tc.max_bad_steps, counters)
    raw_model, raw_disc = accelerator.unwrap_model(model), accelerator.unwrap_model(disc)

    if main:
        save_config(cfg, exp_dir / "config.json")
        truncate_jsonl(exp_dir / "losses.jsonl", step)
        truncate_jsonl(exp_dir / "eval.jsonl", step)
    writer = init_trackers(accelerator, to_dict(cfg))
    loader = build_train_loader(cfg, rank, world, start_step=step)
    eval_items = (load_eval_set(cfg.data.valid_manifests, cfg.sample_rate, cfg.data.valid_items, EVAL_MAX_SECONDS)
                  if main and cfg.data.valid_manifests else [])
    losses = LossLog(exp_dir / "losses.jsonl", main)

    def checkpoint(at_step: int) -> None:
        accelerator.wait_for_everyone()
        if main:
            st = training_state(at_step, counters, {"opt_g": opt_g, "opt_d": opt_d},
                                data={"next_step": at_step, "seed": tc.seed, "world_size": world})
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

    start_step, budget = step, Budget(tc.max_steps, tc.max_minutes)
    pbar = progress_bar(budget, step, main)
    model.train()
    disc.train()
    stop_reason, last_eval = "max_steps", {}
    t_ready = time.perf_counter()
    for wav in loader:
        t_step = time.perf_counter()
        data_s = t_step - t_ready             # time spent waiting for the DataLoader
        wav = wav.to(device)
        seed_step(tc.seed, step, rank)
        bw = bandwidth_at(step, tc.seed, tc.bandwidths, tc.full_bandwidth_prob)
        n_q = cfg.n_q_for_bandwidth(bw)
        lr = lr_at(step, oc.lr, oc.warmup_steps, oc.schedule, tc.max_steps, oc.min_lr_ratio)
        set_lr(opt_g, lr)
        gan_on = step >= lc.disc_start

        # ---- generator ----
        out = model(wav, n_q)
        l_time = (out.audio - wav).abs().mean()
        l_mel = mel_loss(out.audio, wav)
        l_quant = out.quant_loss
        l_stft = stft_loss(out.audio, wav) if stft_loss is not None else torch.zeros((), device=device)
        loss_g = lc.time * l_time + lc.mel * l_mel + lc.stft * l_stft + lc.quant * l_quant
        l_phase = l_complex = torch.zeros((), device=device)
        if phase_loss is not None:
            head = raw_model.decoder.post[-1]
            (_, phase_hat), head.last_spectrum = head.last_spectrum, None
            ph = phase_loss(phase_hat, wav)
            l_phase = lc.phase_ip * ph["ip"] + lc.phase_gd * ph["gd"] + lc.phase_iaf * ph["iaf"]
            loss_g = loss_g + l_phase
        if complex_loss is not None:
            l_complex = complex_loss(out.audio, wav)
            loss_g = loss_g + lc.complex * l_complex
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
        loss_g = debug.poison(step, loss_g)

        # Non-finite loss on any rank -> every rank skips (decided together, or DDP would hang).
        bad = any_rank(accelerator, not torch.isfinite(loss_g))
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
        guard.update(bool(bad), step)
        names = ["loss_g", "time", "mel", "stft", "quant", "adv", "feat", "loss_d"]
        values = [loss_g, l_time, l_mel, l_stft, l_quant, l_adv, l_feat, loss_d]
        if phase_loss is not None:      # the weighted sum, then each term unweighted
            names += ["phase", "phase_ip", "phase_gd", "phase_iaf"]
            values += [l_phase, ph["ip"], ph["gd"], ph["iaf"]]
        if complex_loss is not None:
            names.append("complex")
            values.append(l_complex)
        parts = torch.stack([v.detach() for v in values]).float()
        parts = accelerator.reduce(parts, "mean").tolist()
        row = dict(zip(names, parts))
        row = {"step": step, "bw": bw, "n_q": n_q, "lr": lr, **row, "grad_norm": float(grad_norm), "skipped": bool(bad),
               "step_s": time.perf_counter() - t_step, "data_s": data_s}
        losses.write(row)
        if main:
            pbar.set_postfix(loss=f"{row['loss_g']:.3f}", mel=f"{row['mel']:.3f}", bw=bw)
            pbar.update(1)
            if step % tc.log_every == 0:
                logs = {f"train/{k}": v for k, v in row.items() if k not in ("step", "skipped") and math.isfinite(v)}
                logs.update({f"train/{k}": float(v) for k, v in out.metrics.items()})
                logs["train/bad_steps_total"] = counters["bad_steps_total"]
                accelerator.log(logs, step=step)
        step += 1
        debug.after_step()

        # ---- stop / checkpoint / eval ----
        reason = budget.stop_reason(accelerator, step)
        done = reason is not None
        if tc.eval_every and step % tc.eval_every == 0:
            last_eval = run_eval(step) or last_eval
            accelerator.wait_for_everyone()
        if done or (tc.ckpt_every and step % tc.ckpt_every == 0):
            checkpoint(step)
        if done:
            stop_reason = reason
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
        losses.close()
        export_codec(raw_model, exp_dir / "model")
        summary = {"step": step, "stop_reason": stop_reason, "world_size": world,
                   "minutes": budget.minutes, "steps_this_run": step - start_step,
                   "counters": counters, "eval_mel_distance": {f"{k:g}": v for k, v in last_eval.items()},
                   "num_parameters": sum(p.numel() for p in raw_model.parameters())}
        (exp_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    debug.write_digest(exp_dir, rank, raw_model)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


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
