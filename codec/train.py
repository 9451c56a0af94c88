"""Train the NDVQ codec: one readable loop under Hugging Face Accelerate.

    python -m codec.train --config egs/libritts/conf/codec_mini.yaml train.max_steps=2000
    accelerate launch --multi_gpu --num_processes 8 -m codec.train --config egs/libritts/conf/codec_paper.yaml

Resumes automatically from the newest checkpoint in `train.exp_dir`. Resume is exact (a run killed
and resumed repeats the uninterrupted run's losses step for step) because every random draw of step
s is derived from (seed, s, rank): the data crops (codec/data.py), the bandwidth (seed, s; the same on
every rank) and the torch RNG, re-seeded at the start of every step (core/training.py runs the loop's
skeleton: resume, checkpoints, budget, the non-finite skip, the summary).

Files written to exp_dir: checkpoints/, model/ (the final exported model), losses.jsonl (one line per
step, main process), eval.jsonl (codec/valid.py), train_summary.json, config.json, and TensorBoard
logs under tb/.

Discriminator schedule (DECISION, see LossConfig): frozen for `disc_start` steps, then updated every
`disc_every` steps; the adversarial and feature losses join L_G from `disc_start` on. The mini config
turns it off for 10-minute CPU runs.

Debug hooks (environment variables, used by tests; core.trainer.DebugHooks):
    NDVQ_DEBUG_NAN_STEPS="3,4"   make the generator loss NaN at these steps (the step is skipped)
    NDVQ_DEBUG_STEP_SLEEP=0.3    sleep this many seconds after every step (lets a test kill a run mid-way)
    NDVQ_DEBUG_DIGEST=1          every rank writes exp_dir/digest-rank{r}.json (hash of its weights,
                                 buffers and codebooks) at the end
"""
from __future__ import annotations

# The shared training skeleton first: it sets the OpenMP waiting policy before torch is imported.
from core.training import TrainingRun, run_cli  # noqa: I001

import argparse  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402

from core.config import load_config, to_dict  # noqa: E402
from core.seeding import codec_bandwidth_rng  # noqa: E402

from .build import build_codec, build_discriminator, build_mel_loss, build_pitch_loss, build_stft_loss  # noqa: E402
from .checkpoint import export_codec  # noqa: E402
from .config import CodecConfig  # noqa: E402
from .data import build_train_loader  # noqa: E402
from .losses import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss  # noqa: E402
from .losses.phase import CompressedComplexLoss, PhaseLoss  # noqa: E402
from .valid import CodecEval  # noqa: E402


# -- builders --------------------------------------------------------------------------------------
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


def build_losses(cfg: CodecConfig, model: torch.nn.Module, device) -> dict:
    """The generator's loss modules on `device` (None where the config turns one off)."""
    built = {"mel": build_mel_loss(cfg), "stft": build_stft_loss(cfg), "phase": build_phase_loss(cfg, model),
             "complex": build_complex_loss(cfg), "pitch": build_pitch_loss(cfg)}
    return {k: m.to(device) if m is not None else None for k, m in built.items()}


def build_optimizers(model: torch.nn.Module, disc: torch.nn.Module, oc) -> tuple[torch.optim.Optimizer, ...]:
    """Generator and discriminator optimizers: AdamW, i.e. decoupled weight decay as the authors' fairseq
    Adam. torch.optim.Adam(weight_decay=...) is coupled L2: wherever a gradient is below wd*|w|, Adam's
    normalised step becomes about -lr*sign(w), which pulled codebooks and weight-norm directions to zero
    and held the mini codec near its no-information floor (STOI 0.60 vs 0.74 decoupled)."""
    opt_g = torch.optim.AdamW(model.parameters(), lr=oc.lr, betas=tuple(oc.betas), eps=oc.eps,
                              weight_decay=oc.weight_decay)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=oc.disc_lr, betas=tuple(oc.betas), eps=oc.eps,
                              weight_decay=oc.weight_decay)
    return opt_g, opt_d


def bandwidth_at(step: int, seed: int, bandwidths: tuple[float, ...], full_prob: float = 0.0) -> float:
    """The bandwidth of `step`: a function of (seed, step) only, so every rank draws the same.

    With probability `full_prob` the largest (every stage trains), otherwise uniform over `bandwidths`.
    """
    if not 0.0 <= full_prob <= 1.0:
        raise ValueError(f"train.full_bandwidth_prob={full_prob}: expected a probability in [0, 1]")
    rng = codec_bandwidth_rng(seed, step)
    if full_prob > 0 and rng.random() < full_prob:     # no extra draw at 0: old runs replay exactly
        return max(bandwidths)
    return rng.choice(list(bandwidths))


# -- one step ----------------------------------------------------------------------------------------
def generator_loss(cfg: CodecConfig, out, wav: torch.Tensor, losses: dict, raw_model, raw_disc,
                   gan_on: bool, f0: torch.Tensor | None = None) -> tuple[torch.Tensor, dict, dict]:
    """(L_G, its terms time/mel/stft/quant/adv/feat, the optional terms phase*/complex/pitch): `out` is the
    model's output for `wav` [B, 1, T] (f0 [B, frames]: the tracker's, for a harmonic decoder); the
    weights are cfg.loss's."""
    lc, zero = cfg.loss, torch.zeros((), device=wav.device)
    l_time = (out.audio - wav).abs().mean()
    l_mel = losses["mel"](out.audio, wav)
    l_stft = losses["stft"](out.audio, wav) if losses["stft"] is not None else zero
    loss_g = lc.time * l_time + lc.mel * l_mel + lc.stft * l_stft + lc.quant * out.quant_loss
    extra = {}
    if losses["phase"] is not None:
        head = raw_model.decoder.post[-1]
        (_, phase_hat), head.last_spectrum = head.last_spectrum, None
        ph = losses["phase"](phase_hat, wav)
        extra["phase"] = lc.phase_ip * ph["ip"] + lc.phase_gd * ph["gd"] + lc.phase_iaf * ph["iaf"]
        extra.update({f"phase_{k}": ph[k] for k in ("ip", "gd", "iaf")})     # each term unweighted
        loss_g = loss_g + extra["phase"]
    if losses["complex"] is not None:
        extra["complex"] = losses["complex"](out.audio, wav)
        loss_g = loss_g + lc.complex * extra["complex"]
    if losses["pitch"] is not None:
        extra.update(losses["pitch"](out.pitch, f0))       # "pitch" (weighted), f0_ce, voicing_bce, f0_acc
        loss_g = loss_g + extra["pitch"]
    l_adv = l_feat = zero
    if gan_on:
        raw_disc.requires_grad_(False)      # no DDP pass: the generator step does not touch D's grads
        fake_logits, fake_feats = raw_disc(out.audio)
        with torch.no_grad():
            _, real_feats = raw_disc(wav)
        raw_disc.requires_grad_(True)
        l_adv = hinge_generator_loss(fake_logits)
        l_feat = feature_matching_loss(real_feats, fake_feats)
        loss_g = loss_g + lc.adv * l_adv + lc.feat * l_feat
    terms = {"time": l_time, "mel": l_mel, "stft": l_stft, "quant": out.quant_loss, "adv": l_adv, "feat": l_feat}
    return loss_g, terms, extra


def discriminator_step(run: TrainingRun, disc, opt_d, wav: torch.Tensor, fake: torch.Tensor, grad_clip: float):
    """One hinge update of the discriminator on real `wav` and generated `fake` [B, 1, T]; its loss."""
    logits, _ = disc(torch.cat([wav, fake.detach()], 0))
    B = wav.shape[0]
    loss_d = hinge_discriminator_loss([lg[:B] for lg in logits], [lg[B:] for lg in logits])
    opt_d.zero_grad(set_to_none=True)
    run.accelerator.backward(loss_d)
    run.accelerator.clip_grad_norm_(disc.parameters(), grad_clip)
    opt_d.step()
    opt_d.zero_grad(set_to_none=True)
    run.counters["disc_updates"] += 1
    return loss_d


# -- the loop --------------------------------------------------------------------------------------
def train(cfg: CodecConfig) -> dict:
    tc, oc, lc = cfg.train, cfg.optim, cfg.loss
    run = TrainingRun(tc, find_unused_parameters=True)
    device = run.device

    # Model, discriminator, losses, optimizers (TrainingRun seeded torch: the same on every rank).
    model = build_codec(cfg)
    cfg = model.config                      # build_codec may align quantizer.dimension
    disc = build_discriminator(cfg)
    losses = build_losses(cfg, model, device)
    opt_g, opt_d = build_optimizers(model, disc, oc)
    model, disc, opt_g, opt_d = run.resume([model, disc], {"opt_g": opt_g, "opt_d": opt_d}, {"disc_updates": 0})
    raw_model, raw_disc = run.raw_models
    run.start(to_dict(cfg), ("losses.jsonl", "eval.jsonl"))
    loader = build_train_loader(cfg, run.rank, run.world, start_step=run.step)
    evaluate = CodecEval(run, cfg)

    model.train()
    disc.train()
    last_eval = {}
    for batch in run.steps(loader):
        step = run.step
        wav, f0 = batch if isinstance(batch, (tuple, list)) else (batch, None)
        wav = wav.to(device)
        f0 = f0.to(device) if f0 is not None else None
        teacher = f0 if cfg.seanet.istft.pitch.teacher_forcing else None
        bw = bandwidth_at(step, tc.seed, tc.bandwidths, tc.full_bandwidth_prob)
        n_q = cfg.n_q_for_bandwidth(bw)
        lr = run.set_lr(opt_g, oc)
        gan_on = step >= lc.disc_start

        out = model(wav, n_q, teacher)
        loss_g, terms, extra = generator_loss(cfg, out, wav, losses, raw_model, raw_disc, gan_on, f0)
        loss_g = run.debug.poison(step, loss_g)
        bad, grad_norm = run.update(loss_g, opt_g, model.parameters(), oc.grad_clip)
        loss_d = torch.zeros((), device=device)
        if not bad and gan_on and (step - lc.disc_start) % lc.disc_every == 0:
            loss_d = discriminator_step(run, disc, opt_d, wav, out.audio, oc.grad_clip)

        named = {"loss_g": loss_g, **terms, "loss_d": loss_d, **extra}
        parts = run.accelerator.reduce(torch.stack([v.detach() for v in named.values()]).float(), "mean")
        row = {"step": step, "bw": bw, "n_q": n_q, "lr": lr, **dict(zip(named, parts.tolist())),
               "grad_norm": float(grad_norm), "skipped": bool(bad), **run.timing()}
        run.log_step(row, postfix={"loss": f"{row['loss_g']:.3f}", "mel": f"{row['mel']:.3f}", "bw": bw},
                     tb_extra=lambda: {f"train/{k}": float(v) for k, v in out.metrics.items()})

        done = run.next_step()
        if tc.eval_every and run.step % tc.eval_every == 0:
            last_eval = evaluate(raw_model, run.step) or last_eval
            run.accelerator.wait_for_everyone()
        run.save_if_due(done)
        if done:
            break
    run.close_progress()

    # the end: a final eval (unless this step had one), export, summary
    if evaluate.items and (not tc.eval_every or run.step % tc.eval_every != 0):
        last_eval = evaluate(raw_model, run.step)
    return run.finish(lambda out_dir: export_codec(raw_model, out_dir),
                      lambda common: {**common, "eval_mel_distance": {f"{k:g}": v for k, v in last_eval.items()},
                                      "num_parameters": sum(p.numel() for p in raw_model.parameters())})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m codec.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", default=[], help="YAML override file(s), applied in order")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.max_steps=100")
    p.add_argument("--needs-f0", action="store_true",
                   help="train nothing: exit 0 if this config trains on F0 tracks (data.train_f0; a harmonic "
                        "decoder, see python -m data_prep.pitch), 3 if not")
    args = p.parse_args(argv)
    if args.needs_f0:
        from .data import needs_f0
        sys.exit(0 if needs_f0(load_config(CodecConfig, args.config, args.overrides)) else 3)
    run_cli(lambda: train(load_config(CodecConfig, args.config, args.overrides)))


if __name__ == "__main__":
    main()
