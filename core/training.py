"""The training skeleton `codec.train` and `tts.train` both run in (core.trainer holds its pieces).

A model's train.py builds its model and optimizers, does one training step and its validation, and
says how to export; `TrainingRun` does the rest, the same way for every model:

    run = TrainingRun(tc)                            # accelerator, per-rank logging, debug hooks, seed
    model, opt = run.resume([model], {"optimizer": opt})    # newest checkpoint (if any), prepare
    run.start(record, ("losses.jsonl", "valid.jsonl"))      # config.json, logs cut at the step, TensorBoard
    for batch in run.steps(loader):                  # torch seeded from (seed, step, rank); budget, progress
        lr = run.set_lr(opt, oc)
        loss = run.debug.poison(run.step, model(batch))
        bad, grad_norm = run.update(loss, opt, model.parameters(), oc.grad_clip)   # non-finite: skipped
        run.log_step({"step": run.step, ..., **run.timing()}, postfix={...})
        done = run.next_step()                       # the budget's stop decision (the same on every rank)
        ...validation...
        run.save_if_due(done)                        # at the stop and every ckpt_every steps
        if done:
            break
    run.close_progress()
    run.finish(export, summary)                      # model/, train_summary.json, digest, end_training

Every collective (the non-finite decision, the budget's time-out, the barriers around a checkpoint)
is called by every rank in the same order, or DDP would hang. `run_cli` is the entry points' end:
the same exit codes and one-line errors for every training CLI.
"""
from __future__ import annotations

# first: core.trainer imports core.runtime, which sets the OpenMP waiting policy before torch loads
from .trainer import (Budget, DebugHooks, LossLog, StepGuard, TrainingDiverged, init_trackers,  # noqa: I001
                      lr_at, make_accelerator, nonfinite_anywhere, progress_bar, restore_training_state,
                      seed_step, set_lr, training_state, truncate_jsonl)

import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterable, Iterator, Optional  # noqa: E402

import torch  # noqa: E402

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from .config import ConfigError, save_config  # noqa: E402
from .io import atomic_write_text  # noqa: E402
from .logs import setup_logging  # noqa: E402

log = logging.getLogger(__name__)


class TrainingRun:
    """One run in `tc.exp_dir`. `tc`: a train config with exp_dir, seed, max_steps, max_minutes,
    log_every, ckpt_every, keep_last, mixed_precision and max_bad_steps (codec and tts have one each).
    The attributes a loop reads: accelerator, device, rank, world, main, step, counters, debug, writer
    (TensorBoard, main only), raw_models (the unwrapped modules), budget."""

    def __init__(self, tc: Any, find_unused_parameters: bool = False) -> None:
        self.tc = tc
        self.exp_dir = Path(tc.exp_dir)
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        self.accelerator = make_accelerator(self.exp_dir, tc.mixed_precision, find_unused_parameters)
        acc = self.accelerator
        self.rank, self.world, self.main, self.device = (acc.process_index, acc.num_processes,
                                                         acc.is_main_process, acc.device)
        setup_logging(rank=self.rank)
        self.debug = DebugHooks.from_env()
        self.step, self.start_step, self.stop_reason = 0, 0, None
        self.counters: dict = {}
        self.writer = None
        torch.manual_seed(tc.seed)      # the models are built next: the same weights on every rank

    # -- before the loop -------------------------------------------------------------------------------
    def resume(self, modules: list[torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
               counters: Optional[dict] = None) -> tuple:
        """Load the newest checkpoint, if any (weights before accelerator.prepare, optimizer and RNG
        states after); return the prepared modules then optimizers. `modules`: the model (then the
        discriminator, for the codec); `counters`: the loop's own counters, saved with every checkpoint."""
        self.counters = {"bad_steps_total": 0, "bad_in_row": 0, **(counters or {})}
        state = None
        ckpt = latest_checkpoint(self.exp_dir)
        if ckpt is not None:
            state = load_checkpoint(ckpt, *modules)
            self.step, self.counters = int(state["step"]), dict(state["counters"])
            log.info("resuming from %s (step %d)", ckpt, self.step)
        prepared = self.accelerator.prepare(*modules, *optimizers.values())
        mods, opts = prepared[:len(modules)], prepared[len(modules):]
        self.optimizers = dict(zip(optimizers, opts))
        if state is not None:
            restore_training_state(state, self.optimizers)
        self.guard = StepGuard(self.tc.max_bad_steps, self.counters)
        self.raw_models = [self.accelerator.unwrap_model(m) for m in mods]
        return tuple(prepared)

    def start(self, record: dict, logs: Iterable[str]) -> None:
        """(main) write config.json (`record`: what checkpoints save as their config) and cut the JSONL
        `logs` at the resumed step; TensorBoard on every rank (a writer on the main one); the loss log."""
        self.record = record
        if self.main:
            save_config(record, self.exp_dir / "config.json")
            for name in logs:
                truncate_jsonl(self.exp_dir / name, self.step)
        self.writer = init_trackers(self.accelerator, record)
        self.losses = LossLog(self.exp_dir / "losses.jsonl", self.main)

    # -- the loop --------------------------------------------------------------------------------------
    def steps(self, loader: Iterable, desc: str = "train") -> Iterator:
        """The loader's batches, one a step, from the resumed step on; before each, the torch RNG is
        re-seeded from (seed, step, rank) (what makes resume exact) and the wait for data timed."""
        tc = self.tc
        self.start_step, self.budget = self.step, Budget(tc.max_steps, tc.max_minutes)
        self.pbar = progress_bar(self.budget, self.step, self.main, desc=desc)
        if self.step >= tc.max_steps:
            self.stop_reason = "max_steps"
            log.info("nothing to do: step %d >= max_steps %d", self.step, tc.max_steps)
            return
        t_ready = time.perf_counter()
        for batch in loader:
            self.t_step = time.perf_counter()
            self.data_s = self.t_step - t_ready
            seed_step(tc.seed, self.step, self.rank)
            yield batch
            t_ready = time.perf_counter()

    def set_lr(self, optimizer: torch.optim.Optimizer, oc: Any) -> float:
        """Set and return the learning rate of this step (core.trainer.lr_at over optim config `oc`)."""
        lr = lr_at(self.step, oc.lr, oc.warmup_steps, oc.schedule, self.tc.max_steps, oc.min_lr_ratio)
        set_lr(optimizer, lr)
        return lr

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, parameters: Iterable,
               grad_clip: float) -> tuple[bool, torch.Tensor]:
        """Backward, clip and step, skipped on every rank if the loss (or then the gradient norm) is
        non-finite on any rank: decided together, or DDP would hang. Returns (skipped, grad norm);
        the StepGuard counts skips and raises TrainingDiverged after too many in a row."""
        acc = self.accelerator
        bad = nonfinite_anywhere(acc, loss)
        grad_norm = torch.tensor(float("nan"))
        if not bad:
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            grad_norm = acc.clip_grad_norm_(parameters, grad_clip)
            bad = not bool(torch.isfinite(grad_norm))     # identical on every rank (grads are all-reduced)
            if not bad:
                optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.guard.update(bad, self.step)
        return bad, grad_norm

    def timing(self) -> dict:
        """The step's seconds (so far) and the seconds it waited for its batch."""
        return {"step_s": time.perf_counter() - self.t_step, "data_s": self.data_s}

    def log_step(self, row: dict, postfix: dict, tb_extra: Optional[Callable[[], dict]] = None) -> None:
        """Append `row` to losses.jsonl; (main) the progress bar, and every log_every steps the row's
        finite numbers (+ `tb_extra()`) to TensorBoard under train/."""
        self.losses.write(row)
        if not self.main:
            return
        self.pbar.set_postfix(**postfix)
        self.pbar.update(1)
        if self.step % self.tc.log_every == 0:
            logs = {f"train/{k}": v for k, v in row.items()
                    if k not in ("step", "skipped") and isinstance(v, (int, float)) and math.isfinite(v)}
            logs.update(tb_extra() if tb_extra is not None else {})
            logs["train/bad_steps_total"] = self.counters["bad_steps_total"]
            self.accelerator.log(logs, step=self.step)

    def next_step(self) -> bool:
        """Count the step; True if the run stops now (max_steps, or max_minutes on any rank: a collective)."""
        self.step += 1
        self.debug.after_step()
        self.stop_reason = self.budget.stop_reason(self.accelerator, self.step)
        return self.stop_reason is not None

    def save_if_due(self, done: bool) -> None:
        if done or (self.tc.ckpt_every and self.step % self.tc.ckpt_every == 0):
            self.save()

    def save(self) -> None:
        """A checkpoint of this step (written by the main process, between barriers on every rank)."""
        self.accelerator.wait_for_everyone()
        if self.main:
            st = training_state(self.step, self.counters, self.optimizers,
                                data={"next_step": self.step, "seed": self.tc.seed, "world_size": self.world})
            disc = self.raw_models[1] if len(self.raw_models) > 1 else None
            path = save_checkpoint(self.exp_dir, self.step, self.raw_models[0], disc, self.record, st,
                                   self.tc.keep_last)
            log.info("saved %s", path)
        self.accelerator.wait_for_everyone()

    def close_progress(self) -> None:
        self.pbar.close()

    # -- the end ---------------------------------------------------------------------------------------
    def summary_fields(self) -> dict:
        """What every train_summary.json holds (each model adds its own keys around these)."""
        return {"step": self.step, "stop_reason": self.stop_reason or "max_steps", "world_size": self.world,
                "minutes": self.budget.minutes, "steps_this_run": self.step - self.start_step,
                "counters": self.counters}

    def finish(self, export: Callable[[Path], Any], summary: Callable[[dict], dict],
               after: Optional[Callable[[], None]] = None) -> dict:
        """(main) close the loss log, `export(exp_dir / "model")`, write train_summary.json (atomically:
        `summary(summary_fields())`), then `after()`; every rank: the debug digest, a barrier, the end of
        the trackers. Returns the summary (empty on other ranks)."""
        out: dict = {}
        if self.main:
            self.losses.close()
            export(self.exp_dir / "model")
            out = summary(self.summary_fields())
            atomic_write_text(self.exp_dir / "train_summary.json", json.dumps(out, indent=2) + "\n")
            if after is not None:
                after()
        self.debug.write_digest(self.exp_dir, self.rank, self.raw_models[0])
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        return out


def run_cli(train: Callable[[], Any], errors: tuple[type[BaseException], ...] = ()) -> None:
    """Run a training entry point's `train()` (which loads its config too): a diverged run exits 2;
    a bad config, a missing file, a ValueError (or one of `errors`) exits 1 with one line `error: ...`."""
    # until the Accelerator exists (TrainingRun sets per-rank logging): the rank of the launcher
    setup_logging(rank=int(os.environ.get("RANK", "0") or 0))
    try:
        train()
    except TrainingDiverged as e:
        log.error("%s", e)
        sys.exit(2)
    except (ConfigError, FileNotFoundError, ValueError, *errors) as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(1)
    _leave_rank()


def _leave_rank() -> None:
    """A rank of a multi-process run that finished (outputs written, barrier passed, group destroyed) leaves
    without interpreter finalization. Why: the DDP wrapper keeps its Gloo group alive past
    destroy_process_group, and tearing that down during finalization now and then aborts the process
    ("terminate called without an active exception", SIGABRT, exit -6 under accelerate launch) after the
    run had succeeded; the launcher then reports the whole run failed, and the recipe stops."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return
    import gc
    gc.collect()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


__all__ = ["TrainingRun", "run_cli"]
