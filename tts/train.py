"""Train the VALL-E AR or NAR model on a code dump: one loop for both, under Hugging Face Accelerate.

    python -m tts.train --part ar --config egs/libritts/conf/tts_mini.yaml data.train_dump=data/codes/train-clean-100
    accelerate launch --multi_gpu --num_processes 8 -m tts.train --part nar --config egs/libritts/conf/tts_paper.yaml

Config: TTSConfig defaults, then each YAML file, then the part's section (`ar:` / `nar:` in the YAML),
then the command line's `key=value` overrides. The AR reads only codebook 1 of the dump; the NAR the
first model.n_q. model.codebook_size is taken from the dump; model.vocab_size is raised to the
front end's symbol count if needed (both written to the saved config).

Resumes automatically from the newest checkpoint in `train.exp_dir`, exactly (a killed and resumed run
repeats the uninterrupted run's losses step for step; core/training.py runs the loop's skeleton and
core/trainer.py explains how). A checkpoint made on the codes of another codec, or with another text
front end, is an error naming both.

Files in exp_dir: checkpoints/, model/ (exported: config.json + model.safetensors, docs/code_dump.md
names the codec it reads), losses.jsonl (one line a step), valid.jsonl (one line a validation: loss and
top-1 accuracy per codebook, tts/valid.py), train_summary.json, baselines.json + valid.md + curves.png
(tts/curves.py), tb/ (TensorBoard: loss, accuracy per codebook, lr, grad norm).
Debug hooks: NDVQ_DEBUG_NAN_STEPS, NDVQ_DEBUG_STEP_SLEEP, NDVQ_DEBUG_DIGEST (core.trainer.DebugHooks).
"""
from __future__ import annotations

# The shared training skeleton first: it sets the OpenMP waiting policy before torch is imported.
from core.training import TrainingRun, run_cli  # noqa: I001

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import torch  # noqa: E402

from core.checkpoint import latest_checkpoint  # noqa: E402
from core.config import ConfigError, apply_overrides, load_config  # noqa: E402

from .build import build_model  # noqa: E402
from .checkpoint import (CodecMismatch, check_codec, check_frontend, export_tts_model,  # noqa: E402
                         frontend_record, model_record, read_record)
from .config import Part, TTSConfig  # noqa: E402
from .curves import write_baselines, write_curves  # noqa: E402
from .data import TTSDataset, build_train_loader, validation_batches  # noqa: E402
from .prompt_gain import PromptSwap  # noqa: E402
from .valid import TTSValidation, metric_vector, summarise  # noqa: E402

log = logging.getLogger("tts.train")


# -- config and data -------------------------------------------------------------------------------
def load_tts_config(files: Sequence[str], overrides: Sequence[str], part: Part) -> TTSConfig:
    """Defaults < YAML files < the part's section < command-line overrides."""
    return apply_overrides(load_config(TTSConfig, files, []).for_part(part), overrides)


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


def load_data(cfg: TTSConfig, part: Part) -> tuple[TTSConfig, dict, TTSDataset, Optional[TTSDataset]]:
    """(the config with the dump's codebook size and the front end's vocabulary, the model record,
    the training set, the dev set or None). A dump, or a checkpoint in train.exp_dir, of another
    codec, front end or part is an error (raised before any Accelerator exists: fails fast on every rank)."""
    dc = cfg.data
    fe_dir = Path(dc.frontend_dir) if dc.frontend_dir else default_frontend_dir(dc.train_dump)
    frontend, fe_record = frontend_record(fe_dir)
    n_read = 1 if part == "ar" else cfg.model.n_q
    use_durations = (cfg.model.ar_alignment if part == "ar" else cfg.model.nar_alignment) == "durations"
    if use_durations and not (dc.train_durations and (dc.valid_durations or not dc.valid_dump)):
        raise ConfigError(f"model.{part}_alignment=durations needs data.train_durations and data.valid_durations "
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
    check_resume(Path(cfg.train.exp_dir), part, codec_sha, frontend)
    return cfg, record, train_ds, valid_ds


def check_resume(exp_dir: Path, part: Part, codec_sha: str, frontend) -> None:
    """A checkpoint in exp_dir of another part, codec or front end: an error naming both."""
    ckpt = latest_checkpoint(exp_dir)
    if ckpt is None:
        return
    _, ck_part, ck_meta = read_record(ckpt)
    if ck_part != part:
        raise ValueError(f"{ckpt} is a {ck_part.upper()} checkpoint; this run trains the {part.upper()}: "
                         f"use another train.exp_dir")
    check_codec(ck_meta, codec_sha, f"checkpoint {ckpt}")
    check_frontend(ck_meta, frontend, f"checkpoint {ckpt}")


# -- the loop --------------------------------------------------------------------------------------
def train(cfg: TTSConfig, part: Part) -> dict:
    cfg, record, train_ds, valid_ds = load_data(cfg, part)
    tc, oc, dc, K = cfg.train, cfg.optim, cfg.data, cfg.model.n_q
    # The NAR updates only the drawn stages' heads: DDP must allow unused parameters.
    run = TrainingRun(tc, find_unused_parameters=(part == "nar"))
    device = run.device

    model = build_model(cfg.model, part)
    optimizer = build_optimizer(model, oc)
    model, optimizer = run.resume([model], {"optimizer": optimizer})
    raw, = run.raw_models
    n_params = sum(p.numel() for p in raw.parameters())
    if run.main:
        log.info("%s: %.2f M parameters, %s", part.upper(), n_params / 1e6, train_ds.stats.summary())
    run.start(record, ("losses.jsonl", "valid.jsonl"))
    loader = build_train_loader(train_ds, dc, tc.seed, run.rank, run.world, start_step=run.step)
    valid = validation_batches(valid_ds, dc, tc.seed, run.rank, run.world) if valid_ds is not None else []
    if run.main and valid_ds is not None:
        write_baselines(run.exp_dir, train_ds, valid, 1 if part == "ar" else K)
    swap = PromptSwap(valid_ds, tc.seed) if valid_ds is not None else None     # the prompt gain's donors
    validation = TTSValidation(run, raw, valid, part, K, enabled=valid_ds is not None, swap=swap)

    model.train()
    last_valid = {}
    for batch in run.steps(loader, desc=f"train {part}"):
        step = run.step
        batch = batch.to(device)
        lr = run.set_lr(optimizer, oc)
        with run.accelerator.autocast():
            out = model(batch)
        loss = run.debug.poison(step, out.loss)
        bad, grad_norm = run.update(loss, optimizer, model.parameters(), oc.grad_clip)

        vec = run.accelerator.reduce(metric_vector(out, part, K, loss).to(device), "sum").cpu()
        frames = run.accelerator.reduce(torch.tensor(float(batch.code_lens.sum()), device=device), "sum")
        row = {"step": step, "lr": lr, **summarise(vec, part, K, run.world), "grad_norm": float(grad_norm),
               "skipped": bool(bad), "batch_size": batch.batch_size, "frames": float(frames), **run.timing()}
        run.log_step(row, postfix={"loss": f"{row['loss']:.3f}",
                                   **{k: f"{v:.3f}" for k, v in row.items() if k.startswith("acc_k") and part == "ar"}})

        done = run.next_step()
        if tc.valid_every and run.step % tc.valid_every == 0 and not done:
            last_valid = validation(run.step) or last_valid
        run.save_if_due(done)
        if done:
            break
    run.close_progress()

    # the end: a final validation (every rank: it reduces), export, summary, curves
    last_valid = validation(run.step) or last_valid
    data = {"train": train_ds.stats.to_dict(), "valid": valid_ds.stats.to_dict() if valid_ds is not None else None}
    return run.finish(lambda out_dir: export_tts_model(raw, record, out_dir),
                      lambda common: {"part": part, **common, "valid": last_valid, "num_parameters": n_params,
                                      "codec_sha256": record["codec_sha256"], "data": data},
                      after=lambda: write_curves(run.exp_dir, part))


def main(argv: Optional[list[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tts.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", required=True, choices=["ar", "nar"], help="which model to train")
    p.add_argument("--config", action="append", default=[], help="YAML override file(s), applied in order")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.max_steps=100")
    args = p.parse_args(argv)
    run_cli(lambda: train(load_tts_config(args.config, args.overrides, args.part), args.part),
            errors=(CodecMismatch,))


if __name__ == "__main__":
    main()
