"""Train and evaluate the ablation's runs, resumably.

- `train_run`: one `codec.train` process (under `accelerate launch`, as egs/libritts/run.sh stage 3,
  or plain `python -m codec.train`). codec.train resumes from the newest checkpoint of its exp dir by
  itself, so an interrupted run continues where its last checkpoint left it; a run that reached its
  step budget gets the `.done.train` sentinel.
- `prepare_f0`: a decoder that trains on tracked F0 (codec_mini.yaml's harmonic head) gets the F0 caches
  of the training manifests as run.sh stage 3 gives them (`data.train_f0`), built once when missing and
  checked against the manifests before any run starts.
- `evaluate_run`: scores a trained run on the held-out speakers (codec.evaluate's rows through the
  real encode/decode path, with its reference rows and each row's pitch scores), robustness and code
  statistics, cached as `result.json` together with the settings it was computed with (other settings ->
  recomputed).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np

from core.io import atomic_write_text, iter_jsonl, path_from_file, read_jsonl, write_jsonl
from core.runtime import usable_cores

from .plan import RESULT, ROOT, Plan, Run, add_cost, check_run_info, cpu_seconds, load_cached, mark_trained

log = logging.getLogger("experiments.ablation")

Launcher = Literal["accelerate", "python"]
RobustBandwidths = Literal["ends", "all"]


# ------------------------------------------------------------------------------------------ training
def train_command(plan: Plan, run: Run, launcher: Launcher = "accelerate", nproc: int = 1) -> tuple[list[str], dict]:
    """The command line and environment of one training run."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    train = ["-m", "codec.train", "--config", str(plan.codec_conf), *plan.run_overrides(run)]
    if launcher == "python":
        return [sys.executable, *train], env
    if launcher != "accelerate":
        raise ValueError(f"unknown launcher {launcher!r} (expected accelerate or python)")
    import torch
    gpus = torch.cuda.device_count()
    n = max(1, nproc or gpus or 1)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(n), "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no"]
    if n > 1:
        cmd.append("--multi_gpu")
    if gpus == 0:
        # as run.sh: accelerate's --cpu starts one process only; ACCELERATE_USE_CPU keeps N real CPU ranks
        env["ACCELERATE_USE_CPU"] = "true"
        if n > 1:
            env.setdefault("OMP_NUM_THREADS", "1")
        else:
            # accelerate gives a single CPU process OMP_NUM_THREADS=1 unless told (one core of two idle)
            cmd += ["--num_cpu_threads_per_process", env.get("OMP_NUM_THREADS") or str(usable_cores())]
    return [*cmd, *train], env


def train_run(plan: Plan, run: Run, launcher: Launcher = "accelerate", nproc: int = 1) -> None:
    """Train (or resume) `run` up to `plan.steps` and mark it trained."""
    check_run_info(plan, run)
    cmd, env = train_command(plan, run, launcher, nproc)
    log.info("%s: training to step %d\n$ %s", run.key, plan.steps, " ".join(cmd))
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    proc = subprocess.run(cmd, env=env, cwd=ROOT)
    cpu = cpu_seconds() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{run.key}: codec.train failed with exit code {proc.returncode} (see the log above; "
                           f"run the ablation again to resume from {run.dir}/checkpoints)")
    summary_path = run.dir / "train_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if int(summary.get("step", -1)) < plan.steps:
        raise RuntimeError(f"{run.key}: training stopped at step {summary.get('step')} < {plan.steps} "
                           f"({summary.get('stop_reason')}); run again to resume")
    add_cost(run.dir / "train_cpu.json", cpu_seconds=cpu)     # this run's training CPU over its invocations
    mark_trained(run, plan.steps)
    log.info("%s: trained in %.1f min (%.0f CPU s this invocation)", run.key, (time.perf_counter() - t0) / 60, cpu)


def train_cost(run_dir: Path) -> dict:
    """Per-step cost of a run from its losses.jsonl (every step, resumed parts included)."""
    path = run_dir / "losses.jsonl"
    rows = list(iter_jsonl(path)) if path.is_file() else []
    if not rows:
        return {"steps": 0}
    step_s = np.array([r.get("step_s", np.nan) for r in rows], dtype=float)
    data_s = np.array([r.get("data_s", 0.0) for r in rows], dtype=float)
    cpu_path = run_dir / "train_cpu.json"
    cpu = json.loads(cpu_path.read_text())["cpu_seconds"] if cpu_path.is_file() else None
    return {"steps": len(rows), "step_s_median": float(np.nanmedian(step_s)),
            "seconds_total": float(np.nansum(step_s) + np.nansum(data_s)), "cpu_seconds": cpu}


# ------------------------------------------------------------------------------------------ F0 caches
def f0_cache_path(manifest: str | Path, out: str | Path) -> Path:
    """Where the F0 cache of a training manifest lives: run.sh's <data>/f0/<subset>.npz for a manifest in a
    recipe data dir's manifests/ (so a cache recipe stage 3 made is reused, and the other way round),
    else <out>/f0/<stem>-<hash of its path>.npz."""
    m = Path(manifest).resolve()
    if m.parent.name == "manifests":
        return m.parent.parent / "f0" / f"{m.stem}.npz"
    return Path(out) / "f0" / f"{m.stem}-{hashlib.sha1(str(m).encode()).hexdigest()[:8]}.npz"


def _cache_ids(paths: Sequence[str]) -> set[str]:
    """Utterance ids of F0 caches (the .npz member names: no track is read)."""
    ids: set[str] = set()
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            ids.update(z.files)
    return ids


def prepare_f0(plan: Plan, jobs: int = 1, make: bool = True) -> tuple[str, ...]:
    """Set `plan.train_f0` to the F0 caches the base config's decoder trains on; () when it needs none or
    --train-args names its own caches. `make`: build a missing cache (data_prep.pitch, as run.sh stage 3)
    and check that the caches cover every training utterance, so a gap is a one-line error now rather than
    a failed codec.train later; without it (nothing trains in this invocation) only the paths are set."""
    from codec.data import needs_f0
    plan.train_f0 = ()
    cfg = plan.resolve_config(plan.runs()[0])
    if not needs_f0(cfg):
        return ()
    if cfg.data.train_f0:                  # given with --train-args: used as is
        caches, own = tuple(cfg.data.train_f0), False
    else:
        caches, own = tuple(str(f0_cache_path(m, plan.out)) for m in plan.train_manifests), True
    if make:
        for m, c in zip(plan.train_manifests, caches):
            if Path(c).is_file():
                continue
            if not own:
                raise FileNotFoundError(f"F0 cache {c} (data.train_f0 of --train-args) does not exist")
            # the command run.sh stage 3 runs, in a process of its own: its worker pool forks, which a
            # process that has run torch must not do
            cmd = [sys.executable, "-m", "data_prep.pitch", "--manifest", str(m), "--out", str(c),
                   "--jobs", str(max(1, jobs))]
            log.info("F0 cache %s missing: tracking %s once (the harmonic decoder trains on it)\n$ %s", c, m,
                     " ".join(cmd))
            env = {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"]
                                                            if os.environ.get("PYTHONPATH") else "")}
            if subprocess.run(cmd, env=env, cwd=ROOT).returncode != 0:
                raise ValueError(f"F0 tracking of {m} failed (see its error above); the codec config needs "
                                 f"{c} (python -m data_prep.pitch)")
        ids = [str(r["id"]) for m in plan.train_manifests for r in iter_jsonl(m)]
        missing = sorted(set(ids) - _cache_ids(caches))
        if missing:
            raise ValueError(f"the F0 caches {list(caches)} lack {len(missing)} of {len(ids)} training utterances "
                             f"(e.g. {missing[0]!r}): delete them to rebuild from the training manifests")
    if own:
        plan.train_f0 = caches
    return caches


# ------------------------------------------------------------------------------------------ evaluation
@dataclass
class EvalSettings:
    manifest: str                                # held-out (unseen-speaker) test manifest
    items: int = 20                              # clean evaluation utterances (speaker-balanced subset)
    robust_items: int = 10                       # the first of those used for robustness and flips
    bandwidths: Optional[tuple[float, ...]] = None   # default: one stage + the codec's bandwidths
    robust_bandwidths: RobustBandwidths = "ends"     # noisy-input scores at the lowest and top bitrate only
    metrics: tuple[str, ...] = ("pesq", "stoi", "si_sdr", "mel")
    # noisy-input rows: ViSQOL (~0.5 s a pair, the costliest) is left to the clean rows by default
    robust_metrics: tuple[str, ...] = ("pesq", "stoi", "si_sdr", "mel")
    snrs_db: tuple[float, ...] = (20.0, 10.0)
    noise_kinds: tuple[str, ...] = ("white", "babble")
    latent_levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5)   # x the latent's std
    # each clean row's F0 error (cents), GPE and VDE against the recording's track (codec.evaluation.pitch):
    # the harmonic decoder exists to get pitch right, which the audio metrics barely see
    pitch: bool = True
    max_seconds: float = 10.0
    seed: int = 0
    jobs: int = 2

    def key(self) -> str:
        """What the cached result depends on (jobs does not change a number). The items file is named, not
        located: a result copied into another clone or --out (e.g. the committed runs) stays valid there."""
        d = asdict(self)
        d.pop("jobs")
        d["manifest"] = Path(d["manifest"]).name
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def ablation_bandwidths(cfg) -> list[float]:
    """The codec's one-stage rate (0.4 kbps mini, 0.75 paper) plus every bandwidth it offers."""
    one = cfg.frame_rate * cfg.bits_per_code / 1000.0
    return sorted({round(one, 6), *[float(b) for b in cfg.bandwidths]})


def speaker_balanced(manifest: str | Path, n: int, out: Path) -> Path:
    """The first `n` utterances of `manifest` taken round-robin over its speakers (in order of first
    appearance), written to `out`: the first n of a speaker-sorted manifest would be one or two voices."""
    hint: list = []                         # paths resolved: the subset is written to another folder
    rows = [{**r, "path": path_from_file(r["path"], Path(manifest).parent, hint)} if "path" in r else r
            for r in read_jsonl(manifest)]
    if not rows:
        raise ValueError(f"{manifest}: empty manifest, nothing to evaluate")
    by_spk: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_spk[str(r.get("speaker", ""))].append(r)
    picked, queues = [], [list(v) for v in by_spk.values()]
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    write_jsonl(out, picked)
    return out


def evaluate_run(run: Run, settings: EvalSettings) -> dict:
    """Score the run's exported model (see module docstring) and cache it as result.json."""
    from codec import evaluate as E
    import codec.evaluation.metrics as M
    from codec.api import Codec
    from codec.data import load_eval_set

    from . import codestats, robustness
    import torch
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    model_dir = run.dir / "model"
    if not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{run.key}: no exported model in {model_dir}")
    codec = Codec.from_pretrained(model_dir)
    bandwidths = list(settings.bandwidths or ablation_bandwidths(codec.config))
    metrics = [m for m in settings.metrics if M.available_metrics()[m]]
    items = load_eval_set([settings.manifest], codec.sample_rate, settings.items, settings.max_seconds)
    wavs = [np.ascontiguousarray(w[0, 0].numpy(), dtype=np.float32) for _, w in items]
    scorer = E.Scorer(codec.sample_rate, metrics, settings.jobs, pitch=settings.pitch)
    try:
        clean, _ = E.evaluate_checkpoint(model_dir, wavs, bandwidths, scorer, full=True)
        log.info("%s: clean rows in %.1f s", run.key, time.perf_counter() - t0)
        rob_bws = bandwidths if settings.robust_bandwidths == "all" else sorted({bandwidths[0], bandwidths[-1]})
        # a second scorer over the same worker pool, for the noisy rows' metrics (no pitch: scored against
        # the clean recording, a noisy input's F0 error would mostly measure the tracker on noise)
        rob_scorer = E.Scorer(codec.sample_rate, [m for m in settings.robust_metrics if m in metrics],
                              pool=scorer.pool)
        rob = robustness.measure(codec, wavs[: settings.robust_items], rob_bws, rob_scorer, settings.snrs_db,
                                 settings.noise_kinds, settings.latent_levels, settings.seed)
    finally:
        scorer.close()
    enc = codec.encode(wavs, codec.sample_rate, n_q=codec.n_q)
    zs = robustness.latents(codec, wavs, enc.scales[:, 0].tolist())
    with torch.inference_mode():
        stats = codestats.stage_stats(codec.model.quantizer.eval(), zs)
    summary_path = run.dir / "train_summary.json"
    result = {
        "run": run.key, "variant": run.variant.name, "seed": run.seed, "eval_key": settings.key(),
        "settings": asdict(settings), "metrics": metrics, "keys": scorer.keys, "bandwidths": bandwidths,
        "items": [i for i, _ in items], "sample_rate": codec.sample_rate, "n_q": codec.n_q,
        "codebook_size": codec.codebook_size,
        "train": {**(json.loads(summary_path.read_text()) if summary_path.is_file() else {}),
                  **train_cost(run.dir)},
        "clean": asdict(clean),
        "robustness": asdict(rob),
        "codestats": [asdict(s) for s in stats],
        "eval_seconds": time.perf_counter() - t0,
        # CPU time of this process and its metric workers: the load-independent cost (wall ~ cpu / cores)
        "eval_cpu_seconds": cpu_seconds() - cpu0,
    }
    atomic_write_text(run.dir / RESULT, json.dumps(result, indent=1) + "\n")
    log.info("%s: evaluated in %.1f s", run.key, result["eval_seconds"])
    return result


def load_result(run: Run, settings: Optional[EvalSettings] = None) -> Optional[dict]:
    """The cached result of `run` (None if absent, or computed with other settings when given)."""
    return load_cached(run.dir / RESULT, "eval_key", settings.key() if settings is not None else None)


def select_runs(runs: Sequence[Run], spec: Optional[str]) -> list[Run]:
    """`--runs` filter: comma-separated variant names or variant/seedN (None: every run)."""
    if not spec:
        return list(runs)
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    known = {r.variant.name for r in runs} | {r.key for r in runs}
    bad = [w for w in wanted if w not in known]
    if bad:
        raise ValueError(f"--runs: unknown {bad}; expected variant names or variant/seedN from "
                         f"{sorted(known)}")
    return [r for r in runs if r.variant.name in wanted or r.key in wanted]
