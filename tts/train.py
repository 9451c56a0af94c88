"""Train the VALL-E AR or NAR model on a code dump: one loop for both, under Hugging Face Accelerate.

    python -m tts.train --part ar --config egs/libritts/conf/tts_mini.yaml data.train_dump=data/codes/train-clean-100
    accelerate launch --multi_gpu --num_processes 8 -m tts.train --part nar --config egs/libritts/conf/tts_paper.yaml

Config: TTSConfig defaults, then each YAML file, then the part's section (`ar:` / `nar:` in the YAML),
then the command line's `key=value` overrides. The AR reads only codebook 1 of the dump; the NAR the
first model.n_q. model.codebook_size is taken from the dump; model.vocab_size is raised to the
front end's symbol count if needed (both written to the saved config).

Resumes automatically from the newest checkpoint in `train.exp_dir`, exactly (a killed and resumed run
repeats the uninterrupted run's losses step for step; core.trainer explains how). A checkpoint
made on the codes of another codec, or with another text front end, is an error naming both.

Every rank validates its share of the dev batches and the sums are reduced, so no rank waits in a
collective while another validates (the multi-GPU hang some VALL-E toolkits have).

Files in exp_dir: checkpoints/, model/ (exported: config.json + model.safetensors, contracts.md C),
losses.jsonl (one line a step), valid.jsonl (one line a validation: loss and top-1 accuracy per
codebook), train_summary.json, tb/ (TensorBoard: loss, accuracy per codebook, lr, grad norm).
Debug hooks: NDVQ_DEBUG_NAN_STEPS, NDVQ_DEBUG_STEP_SLEEP, NDVQ_DEBUG_DIGEST (core.trainer.DebugHooks).
"""
from __future__ import annotations

# The shared training plumbing first: it sets the OpenMP waiting policy before torch is imported.
from core.trainer import (Budget, DebugHooks, LossLog, StepGuard, TrainingDiverged,  # noqa: I001
                                 init_trackers, lr_at, make_accelerator, nonfinite_anywhere, progress_bar,
                                 restore_training_state, seed_step, set_lr, training_state,
                                 truncate_jsonl)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import torch  # noqa: E402

from core.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from core.logs import setup_logging  # noqa: E402
from core.config import ConfigError, from_dict, load_config, to_dict  # noqa: E402
from core.io import atomic_write_text  # noqa: E402

from .batch import TTSBatch  # noqa: E402
from .build import build_model  # noqa: E402
from .checkpoint import (CodecMismatch, check_codec, check_frontend, export_tts_model,  # noqa: E402
                         frontend_record, model_record, read_record)
from .config import Part, TTSConfig  # noqa: E402
from .data import TTSDataset, build_train_loader, validation_batches  # noqa: E402
from .diagnostics import attention_summary, baseline_table, code_baselines, plot_attention, shuffled_text  # noqa: E402

log = logging.getLogger("tts.train")


# -- config ----------------------------------------------------------------------------------------
def load_tts_config(files: Sequence[str], overrides: Sequence[str], part: Part) -> TTSConfig:
    """Defaults < YAML files < the part's section < command-line overrides."""
    cfg = load_config(TTSConfig, files, []).for_part(part)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        import yaml
        nested: dict = {}
        cur = nested
        keys = key.strip().split(".")
        for k in keys[:-1]:
            cur = cur.setdefault(k, {})
        cur[keys[-1]] = yaml.safe_load(raw)
        cfg = from_dict(TTSConfig, nested, f"override {item!r}", cfg)
    return cfg


def default_frontend_dir(dump_dir: str | Path) -> Path:
    """data/codes/<subset> -> data/phonemes (the recipe's layout)."""
    return Path(dump_dir).resolve().parent.parent / "phonemes"


def build_optimizer(model: torch.nn.Module, oc) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and embeddings (1-D tensors and *emb* tables)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "emb" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": oc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=oc.lr, betas=tuple(oc.betas), eps=oc.eps)


# -- metrics ---------------------------------------------------------------------------------------
def metric_vector(out, part: Part, n_q: int, loss: torch.Tensor) -> torch.Tensor:
    """[loss, hits_k, count_k for each codebook k] as one float tensor (summed over ranks, then divided).

    AR: codebook 1 (`acc` over the scored positions, <eos> included). NAR: codebooks 2..n_q
    (`acc_k{k}` of the stages drawn in this batch; others count 0)."""
    m = out.metrics
    ks = [1] if part == "ar" else list(range(2, n_q + 1))
    vals = [float(loss.detach())]
    for k in ks:
        acc_key, n_key = ("acc", "n_tokens") if part == "ar" else (f"acc_k{k}", f"n_tokens_k{k}")
        n = float(m.get(n_key, 0.0))
        vals += [float(m[acc_key]) * n if n else 0.0, n]
    return torch.tensor(vals, dtype=torch.float64)


def summarise(vec: torch.Tensor, part: Part, n_q: int, world: int) -> dict:
    """Invert metric_vector after a sum over ranks: loss (mean over ranks) and acc_k{k}."""
    ks = [1] if part == "ar" else list(range(2, n_q + 1))
    out = {"loss": float(vec[0]) / world}
    for i, k in enumerate(ks):
        hits, n = float(vec[1 + 2 * i]), float(vec[2 + 2 * i])
        if n:
            out[f"acc_k{k}"] = hits / n
    return out


@torch.no_grad()
def validate(model: torch.nn.Module, batches: list[TTSBatch], part: Part, n_q: int, accelerator,
             device) -> dict:
    """Teacher-forced loss and top-1 accuracy per codebook on this rank's batches, reduced over ranks.

    Every rank calls this (with possibly no batches): only the final reduce is a collective.
    AR: codebook 1. NAR: every stage 2..n_q on every batch (not drawn)."""
    was = model.training
    model.eval()
    ks = [1] if part == "ar" else list(range(2, n_q + 1))
    sums = torch.zeros(1 + 2 * len(ks), dtype=torch.float64)     # [loss*tokens, hits_k, n_k ...]
    # text gain (AR): [code CE*tokens, hits, CE*tokens with shuffled text, hits, tokens] over batches of >= 2
    gain = torch.zeros(5, dtype=torch.float64)
    dur = torch.zeros(2, dtype=torch.float64)                       # [MSE of log(1 + frames) * tokens, tokens]
    tokens = 0.0
    for batch in batches:
        batch = batch.to(device)
        for i, k in enumerate(ks):
            out = model(batch, stage=None if part == "ar" else k)
            n = float(out.metrics["n_tokens"])
            # the code cross-entropy (comparable with the baselines' NLL); a duration loss is reported apart
            sums[0] += float(out.metrics.get("code_loss", out.loss)) * n
            if "dur_mse" in out.metrics:
                dur[0] += float(out.metrics["dur_mse"]) * float(out.metrics["n_phonemes"])
                dur[1] += float(out.metrics["n_phonemes"])
            sums[1 + 2 * i] += float(out.metrics["acc"]) * n
            sums[2 + 2 * i] += n
            tokens += n
            if part == "ar" and batch.batch_size > 1:
                wrong = model(shuffled_text(batch))
                for j, o in enumerate((out, wrong)):
                    gain[2 * j] += float(o.metrics.get("code_loss", o.loss)) * n
                    gain[2 * j + 1] += float(o.metrics["acc"]) * n
                gain[4] += n
    model.train(was)
    total = accelerator.reduce(torch.cat([sums, gain, dur, torch.tensor([tokens], dtype=torch.float64)]).to(device),
                               "sum").cpu()
    res = {"loss": float(total[0] / total[-1]) if total[-1] else float("nan"), "tokens": float(total[-1])}
    for i, k in enumerate(ks):
        if total[2 + 2 * i]:
            res[f"acc_k{k}"] = float(total[1 + 2 * i] / total[2 + 2 * i])
    g = total[len(sums):len(sums) + 5]
    if g[4]:
        res["text_gain_nats"] = float((g[2] - g[0]) / g[4])      # CE with another text minus CE with its own
        res["text_gain_top1"] = float((g[1] - g[3]) / g[4])
        res["shuffled_acc_k1"] = float(g[3] / g[4])
    d = total[len(sums) + 5:len(sums) + 7]
    if d[1]:
        res["dur_mse"] = float(d[0] / d[1])
    return res


# -- learning curves -------------------------------------------------------------------------------
def write_baselines(exp_dir: Path, train_ds: TTSDataset, valid: list[TTSBatch], n_q: int) -> dict:
    """exp_dir/baselines.json: the text-free count models (tts.diagnostics) fitted on the training dump
    and scored on exactly the positions the validation scores (the AR: whole utterances; the NAR: the
    targets after their prompts, whose leading silence would flatter a baseline), the floor every dev
    score is read against."""
    train = (train_ds.dump.codes(int(p), n_q) for p in train_ds.positions)
    dev = [b.codes[i, :n_q, : int(b.code_lens[i])].numpy() for b in valid for i in range(b.batch_size)]
    res = code_baselines(train, dev, n_q, train_ds.dump.codebook_size)
    atomic_write_text(exp_dir / "baselines.json", json.dumps(res, indent=2) + "\n")
    return res


def write_curves(exp_dir: Path, part: Part) -> None:
    """exp_dir/curves.png (train loss, dev top-1 per codebook vs step) and exp_dir/valid.md (table).

    Published with every run because "my model learns nothing" is the top VALL-E complaint: a
    reference curve tells a user whether theirs is on track."""
    rows = [json.loads(ln) for ln in (exp_dir / "losses.jsonl").read_text().splitlines() if ln.strip()]
    vfile = exp_dir / "valid.jsonl"
    valid = [json.loads(ln) for ln in vfile.read_text().splitlines() if ln.strip()] if vfile.exists() else []
    keys = sorted({k for v in valid for k in v if k.startswith("acc_k")}, key=lambda k: int(k[5:]))
    gain = [k for k in ("text_gain_nats", "text_gain_top1", "monotonicity", "own_phoneme_attention", "dur_mse")
            if any(k in v for v in valid)]
    bfile = exp_dir / "baselines.json"
    baselines = json.loads(bfile.read_text()) if bfile.exists() else {}
    lines = [f"# {part.upper()} validation (teacher-forced, dev dump)", "",
             "| step | loss | " + " | ".join(f"top-1 codebook {k[5:]}" for k in keys)
             + "".join(f" | {k.replace('_', ' ')}" for k in gain) + " |",
             "|---:|---:|" + "---:|" * (len(keys) + len(gain))]
    for v in valid:
        lines.append(f"| {v['step']} | {v['loss']:.3f} | " + " | ".join(f"{v.get(k, float('nan')):.3f}" for k in keys)
                     + "".join(f" | {v.get(k, float('nan')):.3f}" for k in gain) + " |")
    if gain:
        lines += ["", "Text gain: the dev score with each utterance's own phonemes minus the score with another "
                  "utterance's (cross-entropy of the codes in nats a frame, and top-1): 0 means the model ignores "
                  "the text. Monotonicity: rank correlation of audio frame and most attended phoneme in the most "
                  "monotonic layer (4 dev utterances; `attention.png`); own phoneme attention: the share of frames "
                  "whose most attended phoneme is their own; dur mse: the duration head's squared error of log(1 + frames) "
                  "(durations mode). The loss column is the codes' cross-entropy alone."]
    if baselines:
        lines += ["", "Baselines that read no text, fitted on the training dump, scored on the positions this validation scores "
                  "(`baselines.json`; the loss above is comparable with their NLL only for the AR's codebook 1):", "",
                  *baseline_table(baselines)]
    atomic_write_text(exp_dir / "valid.md", "\n".join(lines) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:                      # plots are a convenience; the JSONL files hold the data
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    ok = [r for r in rows if math.isfinite(r["loss"])]
    a.plot([r["step"] for r in ok], [r["loss"] for r in ok], lw=0.6, alpha=0.5, label="train (per step)")
    if valid:
        a.plot([v["step"] for v in valid], [v["loss"] for v in valid], "o-", label="dev")
    a.set_xlabel("step"), a.set_ylabel("cross-entropy"), a.legend(), a.set_title(f"{part.upper()} loss")
    for k in keys:
        pts = [(v["step"], v[k]) for v in valid if k in v]
        line, = b.plot(*zip(*pts), "o-", ms=3, label=f"codebook {k[5:]}")
        floor = baselines.get(f"codebook_{k[5:]}", {})
        best = max((r["top1"] for r in floor.values()), default=None)
        if best is not None:                   # the best text-free baseline of this codebook, dashed
            b.axhline(best, ls="--", lw=0.8, color=line.get_color())
    if any("shuffled_acc_k1" in v for v in valid):
        pts = [(v["step"], v["shuffled_acc_k1"]) for v in valid if "shuffled_acc_k1" in v]
        b.plot(*zip(*pts), "x:", ms=4, color="gray", label="codebook 1, another text")
    b.set_xlabel("step"), b.set_ylabel("top-1 accuracy (dev)"), b.set_title("teacher-forced top-1")
    if keys:
        b.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    tmp = exp_dir / ".curves.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(exp_dir / "curves.png")


# -- the loop --------------------------------------------------------------------------------------
def train(cfg: TTSConfig, part: Part) -> dict:
    tc, oc, dc = cfg.train, cfg.optim, cfg.data
    # ---- data, text front end, codec identity
    fe_dir = Path(dc.frontend_dir) if dc.frontend_dir else default_frontend_dir(dc.train_dump)
    frontend, fe_record = frontend_record(fe_dir)
    n_read = 1 if part == "ar" else cfg.model.n_q
    use_durations = part == "ar" and cfg.model.ar_alignment == "durations"
    if use_durations and not (dc.train_durations and (dc.valid_durations or not dc.valid_dump)):
        raise ConfigError("model.ar_alignment=durations needs data.train_durations and data.valid_durations "
                          "(forced-alignment files, docs/durations.md)")
    train_ds = TTSDataset(dc.train_dump, frontend.tokens_to_ids, dc, n_read, part, cfg.model.prompt_mode, "train",
                          durations=dc.train_durations if use_durations else None)
    header = train_ds.dump.header
    codec_sha = str(header["codec"]["checkpoint_sha256"])
    if header.get("extra", {}).get("frontend"):
        check_frontend({"frontend": header["extra"]["frontend"]}, frontend, f"code dump {dc.train_dump}")
    valid_ds = None
    if dc.valid_dump:
        valid_ds = TTSDataset(dc.valid_dump, frontend.tokens_to_ids, dc, n_read, part, cfg.model.prompt_mode,
                              "valid", durations=dc.valid_durations if use_durations else None)
        check_codec({"codec_sha256": valid_ds.dump.header["codec"]["checkpoint_sha256"]}, codec_sha,
                    f"validation dump {dc.valid_dump}")
    mc = cfg.model
    changes = {}
    if mc.codebook_size != train_ds.dump.codebook_size:
        changes["codebook_size"] = train_ds.dump.codebook_size
    if mc.vocab_size < len(frontend.symbols):
        changes["vocab_size"] = len(frontend.symbols)
    if changes:
        log.info("model config from the dump / front end: %s", changes)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(mc, **changes))
    record = model_record(cfg, part, header, fe_record)

    exp_dir = Path(tc.exp_dir)
    ckpt = latest_checkpoint(exp_dir)
    if ckpt is not None:                  # a checkpoint of another part / codec / front end: refuse
        _, ck_part, ck_meta = read_record(ckpt)
        if ck_part != part:
            raise ValueError(f"{ckpt} is a {ck_part.upper()} checkpoint; this run trains the {part.upper()}: "
                             f"use another train.exp_dir")
        check_codec(ck_meta, codec_sha, f"checkpoint {ckpt}")
        check_frontend(ck_meta, frontend, f"checkpoint {ckpt}")

    # ---- accelerator (all checks above run before it, so a bad setup fails fast on every rank)
    exp_dir.mkdir(parents=True, exist_ok=True)
    # The NAR updates only the drawn stages' heads: DDP must allow unused parameters.
    accelerator = make_accelerator(exp_dir, tc.mixed_precision, find_unused_parameters=(part == "nar"))
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    device = accelerator.device
    setup_logging(rank=accelerator.process_index)
    debug = DebugHooks.from_env()

    # ---- model, optimizer, resume (weights before prepare, optimizer/RNG state after)
    torch.manual_seed(tc.seed)
    model = build_model(cfg.model, part)
    optimizer = build_optimizer(model, oc)
    step, counters, state = 0, {}, None
    if ckpt is not None:
        state = load_checkpoint(ckpt, model)
        step, counters = int(state["step"]), dict(state["counters"])
        log.info("resuming from %s (step %d)", ckpt, step)
    model, optimizer = accelerator.prepare(model, optimizer)
    if state is not None:
        restore_training_state(state, {"optimizer": optimizer})
    guard = StepGuard(tc.max_bad_steps, counters)
    raw = accelerator.unwrap_model(model)
    n_params = sum(p.numel() for p in raw.parameters())

    if main:
        atomic_write_text(exp_dir / "config.json", json.dumps(record, indent=2) + "\n")
        truncate_jsonl(exp_dir / "losses.jsonl", step)
        truncate_jsonl(exp_dir / "valid.jsonl", step)
        log.info("%s: %.2f M parameters, %s", part.upper(), n_params / 1e6, train_ds.stats.summary())
    init_trackers(accelerator, record)
    loader = build_train_loader(train_ds, dc, tc.seed, rank, world, start_step=step)
    valid = validation_batches(valid_ds, dc, tc.seed, rank, world) if valid_ds is not None else []
    if main and valid_ds is not None:
        write_baselines(exp_dir, train_ds, valid, n_read)
    losses = LossLog(exp_dir / "losses.jsonl", main)
    K = cfg.model.n_q

    def checkpoint(at_step: int) -> None:
        accelerator.wait_for_everyone()
        if main:
            st = training_state(at_step, counters, {"optimizer": optimizer},
                                data={"next_step": at_step, "seed": tc.seed, "world_size": world})
            path = save_checkpoint(exp_dir, at_step, raw, None, record, st, tc.keep_last)
            log.info("saved %s", path)
        accelerator.wait_for_everyone()

    def run_valid(at_step: int) -> dict:
        if valid_ds is None:
            return {}
        res = validate(raw, valid, part, K, accelerator, device)      # every rank: reduce inside
        if main and part == "ar" and valid:      # alignment you can see: attention maps of a few dev items
            att, maps = attention_summary(raw, [b.to(device) for b in valid[:2]])
            res.update(att)
            if maps:
                plot_attention(maps, exp_dir / "attention.png", f"AR audio-to-phoneme attention, step {at_step} "
                               f"(layer {att['monotonicity_layer']}, dev)")
        if main:
            accelerator.log({f"valid/{k}": v for k, v in res.items() if k != "tokens"}, step=at_step)
            with open(exp_dir / "valid.jsonl", "a") as fh:
                fh.write(json.dumps({"step": at_step, **res}) + "\n")
            log.info("valid step %d: %s", at_step, " ".join(f"{k} {v:.4f}" for k, v in res.items() if k != "tokens"))
        return res

    start_step, budget = step, Budget(tc.max_steps, tc.max_minutes)
    pbar = progress_bar(budget, step, main, desc=f"train {part}")
    model.train()
    stop_reason, last_valid = None, {}
    if step >= tc.max_steps:
        stop_reason = "max_steps"
        log.info("nothing to do: step %d >= max_steps %d", step, tc.max_steps)
    t_ready = time.perf_counter()
    for batch in ([] if stop_reason else loader):
        t_step = time.perf_counter()
        data_s = t_step - t_ready
        batch = batch.to(device)
        seed_step(tc.seed, step, rank)
        lr = lr_at(step, oc.lr, oc.warmup_steps, oc.schedule, tc.max_steps, oc.min_lr_ratio)
        set_lr(optimizer, lr)
        with accelerator.autocast():
            out = model(batch)
        loss = debug.poison(step, out.loss)

        # Non-finite loss on any rank -> every rank skips (decided together, or DDP would hang).
        bad = nonfinite_anywhere(accelerator, loss)
        grad_norm = torch.tensor(float("nan"))
        if not bad:
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), oc.grad_clip)
            bad = not bool(torch.isfinite(grad_norm))     # identical on every rank (grads are all-reduced)
            if not bad:
                optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        guard.update(bad, step)

        vec = accelerator.reduce(metric_vector(out, part, K, loss).to(device), "sum").cpu()
        frames = accelerator.reduce(torch.tensor(float(batch.code_lens.sum()), device=device), "sum")
        row = {"step": step, "lr": lr, **summarise(vec, part, K, world), "grad_norm": float(grad_norm),
               "skipped": bool(bad), "batch_size": batch.batch_size, "frames": float(frames),
               "step_s": time.perf_counter() - t_step, "data_s": data_s}
        losses.write(row)
        if main:
            pbar.set_postfix(loss=f"{row['loss']:.3f}", **{k: f"{v:.3f}" for k, v in row.items()
                                                           if k.startswith("acc_k") and part == "ar"})
            pbar.update(1)
            if step % tc.log_every == 0:
                logs = {f"train/{k}": v for k, v in row.items()
                        if k not in ("step", "skipped") and isinstance(v, (int, float)) and math.isfinite(v)}
                logs["train/bad_steps_total"] = counters["bad_steps_total"]
                accelerator.log(logs, step=step)
        step += 1
        debug.after_step()

        stop_reason = budget.stop_reason(accelerator, step)
        if tc.valid_every and step % tc.valid_every == 0 and stop_reason is None:
            last_valid = run_valid(step) or last_valid
        if stop_reason is not None or (tc.ckpt_every and step % tc.ckpt_every == 0):
            checkpoint(step)
        if stop_reason is not None:
            break
        t_ready = time.perf_counter()
    pbar.close()

    # ---- the end: final validation (all ranks), export, summary
    last_valid = run_valid(step) or last_valid
    summary = {}
    if main:
        losses.close()
        export_tts_model(raw, record, exp_dir / "model")
        summary = {"part": part, "step": step, "stop_reason": stop_reason, "world_size": world,
                   "minutes": budget.minutes, "steps_this_run": step - start_step, "counters": counters,
                   "valid": last_valid, "num_parameters": n_params, "codec_sha256": codec_sha,
                   "data": {"train": train_ds.stats.to_dict(),
                            "valid": valid_ds.stats.to_dict() if valid_ds is not None else None}}
        atomic_write_text(exp_dir / "train_summary.json", json.dumps(summary, indent=2) + "\n")
        write_curves(exp_dir, part)
    debug.write_digest(exp_dir, rank, raw)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


def main(argv: Optional[list[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", required=True, choices=["ar", "nar"], help="which model to train")
    p.add_argument("--config", action="append", default=[], help="YAML override file(s), applied in order")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.max_steps=100")
    args = p.parse_args(argv)
    # until the Accelerator exists (train() replaces this with per-rank logging): rank from the launcher
    rank = int(os.environ.get("RANK", "0") or 0)
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(name)s: %(message)s")
    try:
        cfg = load_tts_config(args.config, args.overrides, args.part)
        train(cfg, args.part)
    except TrainingDiverged as e:
        log.error("%s", e)
        sys.exit(2)
    except (CodecMismatch, ConfigError, FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        sys.stderr.write(f"error: {e}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
