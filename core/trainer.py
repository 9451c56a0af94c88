"""Training plumbing shared by `codec.train` and `tts.train` (tts depends on codec, never the reverse).

The pieces a training loop is made of; core.training.TrainingRun puts them together into the skeleton
both loops run in (each model's train.py keeps only its own step, validation and export):

- `make_accelerator`: Accelerate on CPU, one or many GPUs or nodes (`accelerate
  launch`), mixed precision, TensorBoard trackers under `exp_dir/tb`.
- Exact resume. Every random draw of step s is derived from (seed, s, rank): `seed_step` re-seeds the
  torch RNG at the start of every step and data samplers index batches by step, so a run killed and
  resumed from its newest checkpoint repeats the uninterrupted run's losses step for step.
  `training_state` / `restore_training_state` carry optimizers, counters and the python/numpy/torch RNG
  states (tensors and primitives only: loaded with torch.load(weights_only=True)); the checkpoints
  themselves are core.checkpoint's atomic step directories (tmp dir + rename, pruned to
  `keep_last`, `latest_checkpoint` picks the newest complete one). `truncate_jsonl` drops log lines of
  steps a killed run wrote after its last checkpoint.
- `StepGuard`: a non-finite loss or gradient on ANY rank skips the step on every rank (decided by a
  collective, or DDP would hang), counted; too many in a row raise `TrainingDiverged`.
- `Budget`: stop at `max_steps` or after `max_minutes` of wall time (decided together by all ranks).
- `lr_at`: linear warmup, then constant, cosine or inverse-square-root decay.
- `LossLog`, `progress_bar`, `state_digest`, `DebugHooks` (environment hooks used by tests).

Import this module before torch is first imported (the training entry points do it first): it imports
core.runtime, which sets the OpenMP waiting policy libgomp reads once, when torch loads it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Optional

from . import runtime  # noqa: F401  (first: OpenMP waiting, set before torch loads)

import torch  # noqa: E402  (after the OpenMP setting above)
from accelerate import Accelerator, DistributedDataParallelKwargs  # noqa: E402
from .progress import progress  # noqa: E402

from .seeding import Stream, capture_rng_state, restore_rng_state, stream_seed  # noqa: E402

log = logging.getLogger(__name__)

runtime.flush_denormals()      # before any parallel op creates the intra-op thread pool

MixedPrecision = Literal["no", "fp16", "bf16"]
LRSchedule = Literal["constant", "cosine", "inverse_sqrt"]      # see lr_at


class TrainingDiverged(RuntimeError):
    """Too many non-finite steps in a row."""


# -- accelerate ------------------------------------------------------------------------------------
def use_cpu_from_env() -> bool:
    """ACCELERATE_USE_CPU=true keeps N real CPU ranks (`accelerate launch --cpu` starts only one)."""
    return os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")


def make_accelerator(exp_dir: str | Path, mixed_precision: MixedPrecision = "no",
                     find_unused_parameters: bool = False) -> Accelerator:
    """An Accelerator logging to TensorBoard under `exp_dir` (trackers: `init_trackers`)."""
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)]
    accelerator = Accelerator(mixed_precision=mixed_precision, log_with="tensorboard",
                              project_dir=str(exp_dir), kwargs_handlers=handlers, cpu=use_cpu_from_env())
    runtime.flush_denormals()
    return accelerator


def init_trackers(accelerator: Accelerator, config: dict, name: str = "tb"):
    """Start TensorBoard under exp_dir/<name> with the flattened config as hparams; the writer (main) or None."""
    accelerator.init_trackers(name, config=flat_config(config))
    return accelerator.get_tracker("tensorboard").writer if accelerator.is_main_process else None


def flat_config(d: dict, prefix: str = "") -> dict:
    """Flatten a config dict for TensorBoard's hparams (lists and None become strings)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, key + "."))
        elif isinstance(v, (int, float, str, bool)):
            out[key] = v
        else:
            out[key] = str(v)
    return out


def any_rank(accelerator: Accelerator, flag: bool) -> bool:
    """True on every rank if `flag` is true on any rank (a collective: call it on all ranks)."""
    t = torch.tensor(float(bool(flag)), device=accelerator.device)
    return bool(accelerator.reduce(t, "sum") > 0)


def nonfinite_anywhere(accelerator: Accelerator, loss: torch.Tensor) -> bool:
    """True on every rank if the loss is NaN/Inf on any rank (every rank then skips the step)."""
    return any_rank(accelerator, not bool(torch.isfinite(loss.detach()).all()))


# -- seeding and schedules ---------------------------------------------------------------------------
def step_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed of (seed, step, rank): a run resumed at `step` draws what the original drew."""
    return stream_seed(seed, Stream.STEP, step, rank)


def seed_step(seed: int, step: int, rank: int) -> None:
    torch.manual_seed(step_seed(seed, step, rank))


def lr_at(step: int, base: float, warmup: int, schedule: LRSchedule = "constant",
          total_steps: Optional[int] = None, min_ratio: float = 0.0) -> float:
    """Learning rate of `step` (0-based): linear warmup over `warmup` steps, then

    constant      base
    cosine        from base down to base * min_ratio at `total_steps` (half a cosine), then flat
    inverse_sqrt  base * sqrt(warmup / (step + 1)) (no end point: suits runs without a known length)
    """
    warm = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    if schedule == "constant" or step < warmup:
        return base * warm
    if schedule == "inverse_sqrt":
        return base * math.sqrt(max(warmup, 1) / (step + 1))
    if schedule == "cosine":
        if not total_steps or total_steps <= warmup:
            return base
        progress = min(1.0, (step - warmup) / (total_steps - warmup))
        return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown lr schedule {schedule!r} (constant, cosine, inverse_sqrt)")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr


# -- resume --------------------------------------------------------------------------------------------
def training_state(step: int, counters: dict, optimizers: dict[str, torch.optim.Optimizer],
                   **extra: Any) -> dict:
    """What a checkpoint's state.pt holds: step, counters, optimizer states, RNG states, extras."""
    return {"step": step, "counters": dict(counters), "rng": capture_rng_state(),
            **{k: opt.state_dict() for k, opt in optimizers.items()}, **extra}


def restore_training_state(state: dict, optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """Load optimizer states (after accelerator.prepare) and the RNG states."""
    for k, opt in optimizers.items():
        opt.load_state_dict(state[k])
    restore_rng_state(state["rng"])


def truncate_jsonl(path: str | Path, before_step: int) -> None:
    """Drop lines of steps >= before_step (written by a run killed after its last checkpoint)."""
    path = Path(path)
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] < before_step]
    path.write_text("".join(ln + "\n" for ln in keep))


# -- step bookkeeping ----------------------------------------------------------------------------------
@dataclass
class StepGuard:
    """Counts skipped (non-finite) steps; `counters` is saved in checkpoints and restored on resume."""
    max_bad_in_row: int
    counters: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counters.setdefault("bad_steps_total", 0)
        self.counters.setdefault("bad_in_row", 0)

    def update(self, bad: bool, step: int) -> None:
        """Record the outcome of `step`; raise TrainingDiverged after too many bad steps in a row."""
        c = self.counters
        if not bad:
            c["bad_in_row"] = 0
            return
        c["bad_steps_total"] += 1
        c["bad_in_row"] += 1
        log.warning("step %d: non-finite loss or gradient, step skipped (%d in a row, %d total)",
                    step, c["bad_in_row"], c["bad_steps_total"])
        if c["bad_in_row"] >= self.max_bad_in_row:
            raise TrainingDiverged(f"{c['bad_in_row']} non-finite steps in a row (last at step {step}); "
                                   f"lower optim.lr, raise optim.warmup_steps, or check the data")


@dataclass
class Budget:
    """Stop at `max_steps`, or once `max_minutes` of wall time have passed since `start()`."""
    max_steps: int
    max_minutes: Optional[float] = None
    t0: float = field(default_factory=time.time)

    def start(self) -> None:
        self.t0 = time.time()

    @property
    def minutes(self) -> float:
        return (time.time() - self.t0) / 60

    def stop_reason(self, accelerator: Accelerator, step: int) -> Optional[str]:
        """'max_minutes' / 'max_steps' / None, the same on every rank (a collective: call it on all)."""
        timed_out = self.max_minutes is not None and self.minutes >= self.max_minutes
        if any_rank(accelerator, timed_out):
            return "max_minutes"
        return "max_steps" if step >= self.max_steps else None


class LossLog:
    """Append-only JSONL of one row per step (main process only; other ranks write nothing)."""

    def __init__(self, path: str | Path, enabled: bool) -> None:
        self.fh = open(path, "a") if enabled else None

    def write(self, row: dict) -> None:
        if self.fh is not None:
            self.fh.write(json.dumps(row) + "\n")
            self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def progress_bar(budget: Budget, initial: int, enabled: bool, desc: str = "train"):
    """Progress over steps (core.progress: a tqdm bar on a terminal, a log line every 5% of the
    steps, or 100 steps, or a minute, in a log file); no step-based ETA under a wall-time budget (it
    usually ends the run first)."""
    return progress(total=budget.max_steps if budget.max_minutes is None else None, initial=initial,
                    enabled=enabled, desc=desc, unit="step")


def state_digest(module: torch.nn.Module, detail: Iterable[str] = ("quantizer",)) -> dict:
    """sha256 of every tensor in the state dict, plus short per-tensor hashes of names containing `detail`."""
    h = hashlib.sha256()
    per = {}
    detail = tuple(detail)
    for name, t in sorted(module.state_dict().items()):
        b = t.detach().cpu().contiguous().numpy().tobytes()
        h.update(name.encode())
        h.update(b)
        if any(d in name for d in detail):
            per[name] = hashlib.sha256(b).hexdigest()[:16]
    return {"all": h.hexdigest(), "quantizer": per}


@dataclass
class DebugHooks:
    """Environment variables the tests use to exercise the loop.

    NDVQ_DEBUG_NAN_STEPS="3,4"  make the loss NaN at these steps (the step is skipped)
    NDVQ_DEBUG_STEP_SLEEP=0.3   sleep this many seconds after every step (lets a test kill a run mid-way)
    NDVQ_DEBUG_DIGEST=1         every rank writes exp_dir/digest-rank{r}.json (hash of its weights) at the end
    """
    nan_steps: frozenset = frozenset()
    step_sleep: float = 0.0
    digest: bool = False

    @classmethod
    def from_env(cls) -> "DebugHooks":
        return cls(nan_steps=frozenset(int(s) for s in os.environ.get("NDVQ_DEBUG_NAN_STEPS", "").split(",")
                                       if s.strip()),
                   step_sleep=float(os.environ.get("NDVQ_DEBUG_STEP_SLEEP", "0") or 0),
                   digest=bool(os.environ.get("NDVQ_DEBUG_DIGEST")))

    def poison(self, step: int, loss: torch.Tensor) -> torch.Tensor:
        return loss * float("nan") if step in self.nan_steps else loss

    def after_step(self) -> None:
        if self.step_sleep:
            time.sleep(self.step_sleep)

    def write_digest(self, exp_dir: str | Path, rank: int, module: torch.nn.Module) -> None:
        if self.digest:
            (Path(exp_dir) / f"digest-rank{rank}.json").write_text(json.dumps(state_digest(module)))


__all__ = ["TrainingDiverged", "make_accelerator", "init_trackers", "flat_config",
           "any_rank", "nonfinite_anywhere", "step_seed", "seed_step", "lr_at", "set_lr", "training_state",
           "restore_training_state", "truncate_jsonl", "StepGuard", "Budget", "LossLog", "progress_bar",
           "state_digest", "DebugHooks", "use_cpu_from_env", "MixedPrecision", "LRSchedule"]
