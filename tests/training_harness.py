"""Training runs as subprocesses, for the end-to-end tests of codec.train and tts.train (CPU).

    p = run_training("codec.train", ["--config", cfg, f"train.exp_dir={exp}"], env=training_env())
    p = run_training("tts.train", [...], launch=True)          # two CPU ranks under accelerate launch
    kill_after_checkpoint(cmd, exp, 3)                         # a run killed after its step-3 checkpoint
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from core.checkpoint import checkpoint_dir
from core.io import iter_jsonl

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DEBUG_VARS = ("NDVQ_DEBUG_NAN_STEPS", "NDVQ_DEBUG_STEP_SLEEP", "NDVQ_DEBUG_DIGEST")


def training_env(**extra) -> dict:
    """One OpenMP thread, the repo on PYTHONPATH, CPU ranks, no inherited debug hook; then `extra`."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), ACCELERATE_USE_CPU="true")
    for k in DEBUG_VARS:
        env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (so two launches at once never meet on torchrun's default 29500)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def training_cmd(module: str, args: list[str], launch: bool = False) -> list[str]:
    """`python -m module args`, or the same under `accelerate launch` with 2 CPU processes."""
    if launch:
        return [PY, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
                "-m", module, *args]
    return [PY, "-m", module, *args]


def run_training(module: str, args: list[str], env: dict | None = None, launch: bool = False,
                 check: bool = True) -> subprocess.CompletedProcess:
    """Run a training CLI to its end; with `check`, a non-zero exit fails with the end of its stderr."""
    cmd = training_cmd(module, args, launch)
    p = subprocess.run(cmd, cwd=ROOT, env=env or training_env(), capture_output=True, text=True, timeout=240)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return p


def kill_after_checkpoint(cmd: list[str], exp_dir: Path, step: int, step_sleep: float) -> None:
    """Start `cmd` with every step slowed by `step_sleep` s (so the kill surely lands between the
    checkpoint and the end), kill it once the checkpoint of `step` exists; it must have died."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=training_env(NDVQ_DEBUG_STEP_SLEEP=step_sleep),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not checkpoint_dir(exp_dir, step).exists():
        time.sleep(0.05)
    proc.kill()
    assert proc.wait() != 0


def losses(exp_dir) -> list[dict]:
    """The rows of exp_dir/losses.jsonl."""
    return list(iter_jsonl(Path(exp_dir) / "losses.jsonl"))
