"""Downstream check of the ablation: the mini TTS trained on each codec run's codes, scored by stage 8.

Every (variant, seed) codec run feeds egs/libritts/run.sh stages 4-8 unchanged (`--downstream-seeds`
picks a subset of the seeds; default all), in a directory of its own (the recipe is reused, not
re-implemented):

    <out>/downstream/<variant>/seed<S>/
        data/            manifests/, phonemes/ (and the corpus) -> symlinks to the recipe's data dir;
                         .done.stage{0,1,2}.* so run.sh never redoes them; codes/ = stage 4's dump
        exp/codec/model  -> symlink to runs/<variant>/seed<S>/model (the trained codec); with
                         .done.stage3.codec, run.sh never trains a codec here
        exp/{ar,nar,synth,eval}/   stages 5-8 (run.sh's own layout and sentinels)
        exp/aligner, data/durations  -> symlinks to the shared aligner (below), with .done.stage4.align
    <out>/downstream/aligner/   the forced aligner of stage 4 and its durations, trained once for all runs
        downstream_run.json   the settings and codec the directory was started with
        result.json           stage 8's rows (WER, PER, SIM, pitch, intervals) of exp/eval/report.json, the
                              AR's and NAR's last dev row (cross-entropy, top-1), budget and cost: "done"

The forced aligner is shared: it is trained on log-mels, not on codes (the dump only lists the
utterances and their 50 Hz framing, the same for every variant), and its recognizer is stage 8's
phoneme-error judge. One aligner gives every run the same durations and the same judge, so a variant's
numbers differ only through its codes, and it is trained once (run.sh stage 4 in <out>/downstream/aligner,
on the first finished codec run's dump; concurrent invocations wait for it under a file lock) instead of
once a run.

A replicate is one seed S end to end: codec train.seed=S, TTS train.seed=S (AR and NAR) and synthesis
--seed S, the same for every variant; the zero-shot items are the same for all (run.sh's list). The TTS
budget is steps (`train.max_steps`, wall-clock budget off), the same for every run; by default the
recipe's own (the AR's and NAR's resolved train.max_steps of the TTS config, `recipe_budget`). An
interrupted run resumes through run.sh's sentinels (stage 4 skips finished shards, stages 5-6 resume
from their newest checkpoint); a run with result.json is skipped.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

from core.io import atomic_write_text, iter_jsonl, portable_path
from core.progress import progress

from .plan import RECIPE, RESULT, ROOT, Plan, Run, add_cost, cpu_seconds, load_cached, read_done
from .summary import fmt_num

log = logging.getLogger("experiments.ablation")

RUN_SH = RECIPE / "run.sh"
DOWNSTREAM = "downstream"
RUN_INFO = "downstream_run.json"
COST = "cost.json"
ALIGNER = "aligner"              # <out>/downstream/aligner: the shared forced aligner (run.sh stage 4)
ALIGN_SENTINEL = ".done.stage4.align"
ROWS = ("ground_truth", "resynthesis", "gt_cb1_nar", "tts")
ROW_FIELDS = ("wer", "per", "sim", "sim_std", "n", "missing", "ci", "pitch")
# what stages 4-8 read from the recipe's data dir (shared, read only) and the sentinels that say so
SHARED = ("manifests", "phonemes", "mini")
DATA_STAGES = ((0, "corpus"), (1, "manifests"), (2, "phonemes"))
DEFAULT_TTS_CONF = {"mini": "conf/tts_mini.yaml", "libritts": "conf/tts_paper.yaml"}    # as run.sh

DownstreamStatus = Literal["done", "partial", "missing", "no_codec"]

# --tiny: a TTS small enough to train a few steps in seconds (as tests/recipe/test_recipe_tts.py)
TINY_TTS = ("model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.ffn_mult=2", "model.n_q=4",
            "data.min_seconds=0.3", "data.max_frames_per_batch=300", "data.ar_context_seconds=0.5",
            "data.num_workers=0", "data.prompt_min_seconds=0.1", "data.prompt_max_seconds=0.4", "train.valid_every=2",
            "train.ckpt_every=2")


@dataclass(frozen=True)
class DownstreamSettings:
    """What defines every downstream run (all but nproc go into its key; the seed is the run's own)."""
    data_dir: str                          # the recipe's data dir (manifests/, phonemes/)
    corpus: str = "mini"                   # run.sh --corpus (subsets, default TTS config)
    ar_steps: int = 700                    # AR optimizer steps (the budget; minutes are off)
    nar_steps: int = 600
    tts_args: tuple[str, ...] = ()         # TTS overrides of both parts (before ar_args / nar_args)
    ar_args: tuple[str, ...] = ()
    nar_args: tuple[str, ...] = ()
    tts_conf: Optional[str] = None         # run.sh --tts-conf (default: its corpus's)
    # run.sh --zs-per-speaker; None: run.sh's own (8 a speaker: the recipe's 64 test items, scored as stage 8
    # scores the recipe)
    zs_per_speaker: Optional[int] = None
    synth_args: str = ""
    eval_args: str = ""
    nproc: int = 0                         # training processes (run.sh --nproc; 0: its default)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ar_steps < 1 or self.nar_steps < 1:
            raise ValueError(f"TTS step budgets must be >= 1 (AR {self.ar_steps}, NAR {self.nar_steps})")

    def part_overrides(self, part: str, seed: int) -> list[str]:
        """run.sh --ar-args / --nar-args: the replicate's seed and the step budget last, so they win."""
        steps = self.ar_steps if part == "ar" else self.nar_steps
        own = self.ar_args if part == "ar" else self.nar_args
        return [*self.tts_args, *own, f"train.seed={seed}", "train.max_minutes=null", f"train.max_steps={steps}"]

    def record(self) -> dict:
        d = asdict(self)
        for k in ("nproc", "extra"):
            d.pop(k)
        return d

    def key(self) -> str:
        """What a result depends on, with its paths as any clone names them (portable_path: relative to the
        repository when inside it), so a result copied into another clone or --out stays valid there."""
        rec = {k: portable_path(v, ROOT) if k in ("data_dir", "tts_conf") and v else v
               for k, v in self.record().items()}
        return hashlib.sha1(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:12]

    def budget(self) -> str:
        return f"AR {self.ar_steps} + NAR {self.nar_steps} steps"


def recipe_budget(tts_conf: str | Path, overrides: Sequence[str] = ()) -> tuple[int, int]:
    """(AR, NAR) train.max_steps of a TTS config as run.sh stages 5-6 resolve it (the part's section over
    the shared one, then `overrides`): the recipe's own budget, read rather than copied."""
    from tts.train import load_tts_config
    return tuple(int(load_tts_config([str(tts_conf)], list(overrides), part).train.max_steps)
                 for part in ("ar", "nar"))


@dataclass(frozen=True)
class DownstreamRun:
    variant: str
    seed: int
    dir: Path

    @property
    def key(self) -> str:
        return f"{self.variant}/seed{self.seed}"


def downstream_runs(plan: Plan, seeds: Optional[Sequence[int]] = None,
                    variants: Optional[Sequence[str]] = None) -> list[DownstreamRun]:
    """Every (variant, seed) downstream run, seed-major like the codec runs (a partial downstream covers
    every variant early)."""
    seeds = plan.seeds if seeds is None else seeds
    bad = [s for s in seeds if s not in plan.seeds]
    if bad:
        raise ValueError(f"--downstream-seeds {bad}: not among the ablation's seeds {list(plan.seeds)}")
    names = plan.variants if variants is None else variants
    return [DownstreamRun(v, s, Path(plan.out) / DOWNSTREAM / v / f"seed{s}") for s in seeds for v in names]


def codec_run(plan: Plan, drun: DownstreamRun) -> Run:
    for r in plan.runs():
        if r.variant.name == drun.variant and r.seed == drun.seed:
            return r
    raise ValueError(f"{drun.key}: no such codec run in the ablation (seeds {list(plan.seeds)})")


def status(plan: Plan, drun: DownstreamRun, settings: DownstreamSettings) -> DownstreamStatus:
    """done: result.json with these settings; partial: started; missing: not started, codec trained;
    no_codec: the codec run of the same variant and seed has not reached the step budget yet."""
    if load(drun.dir, settings) is not None:
        return "done"
    done = read_done(codec_run(plan, drun))
    if done is None or done < plan.steps:
        return "no_codec"
    return "partial" if (drun.dir / RUN_INFO).is_file() else "missing"


def load(rdir: Path, settings: Optional[DownstreamSettings] = None) -> Optional[dict]:
    """A run's cached result (None if absent, or made with other settings when given)."""
    return load_cached(Path(rdir) / RESULT, "key", settings.key() if settings is not None else None)


# ------------------------------------------------------------------------------------------ layout
def _link(link: Path, target: Path) -> None:
    """Symlink `link` -> `target`; an existing link to elsewhere (or a real file) is an error."""
    target = Path(target).resolve()
    if link.is_symlink():
        if Path(os.readlink(link)).resolve() == target:
            return
        raise ValueError(f"{link} points to {os.readlink(link)}, not {target}: this downstream directory was "
                         "made for another data dir or codec; delete it or use another --out")
    if link.exists():
        raise ValueError(f"{link} exists and is not a symlink to {target}; delete it or use another --out")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=target.is_dir())


def prepare(rdir: Path, codec_model: Path, settings: DownstreamSettings,
            aligner: Optional[Path] = None) -> tuple[Path, Path]:
    """Build <rdir>/{data,exp} for run.sh stages 4-8 (idempotent): `aligner`, a finished shared aligner
    directory, stands in for stage 4's aligner half. Returns (data dir, exp dir)."""
    src = Path(settings.data_dir).resolve()
    for sub in ("manifests", "phonemes"):
        if not (src / sub).is_dir():
            raise FileNotFoundError(f"{src / sub} not found: the downstream TTS needs run.sh stages 0-2 "
                                    f"of {src} (bash egs/libritts/run.sh --stop-stage 2)")
    if not (Path(codec_model) / "config.json").is_file():
        raise FileNotFoundError(f"{codec_model}: no exported codec (config.json) to tokenize with")
    data, exp = rdir / "data", rdir / "exp"
    for sub in SHARED:
        if (src / sub).exists():
            _link(data / sub, src / sub)
    for n, name in DATA_STAGES:
        sentinel = data / f".done.stage{n}.{name}"
        if not sentinel.is_file():
            atomic_write_text(sentinel, settings.corpus + "\n")
    _link(exp / "codec" / "model", codec_model)
    sentinel = exp / ".done.stage3.codec"
    if not sentinel.is_file():
        atomic_write_text(sentinel, settings.corpus + "\n")
    if aligner is not None:
        _link(exp / "aligner", aligner / "exp" / "aligner")
        _link(data / "durations", aligner / "data" / "durations")
        if not (exp / ALIGN_SENTINEL).is_file():
            atomic_write_text(exp / ALIGN_SENTINEL, settings.corpus + "\n")
    return data, exp


def recipe_command(settings: DownstreamSettings, seed: int, data: Path, exp: Path, recipe: Path = RUN_SH,
                   stop_stage: int = 8) -> list[str]:
    """The run.sh invocation of stages 4-8 for one run (--seed: the synthesis seed of stage 7)."""
    cmd = ["bash", str(recipe), "--stage", "4", "--stop-stage", str(stop_stage), "--corpus", settings.corpus,
           "--data-dir", str(data), "--exp-dir", str(exp), "--seed", str(seed),
           "--ar-args", " ".join(settings.part_overrides("ar", seed)),
           "--nar-args", " ".join(settings.part_overrides("nar", seed))]
    if settings.zs_per_speaker is not None:
        cmd += ["--zs-per-speaker", str(settings.zs_per_speaker)]
    if settings.tts_conf:
        cmd += ["--tts-conf", str(Path(settings.tts_conf).resolve())]
    if settings.synth_args:
        cmd += ["--synth-args", settings.synth_args]
    if settings.eval_args:
        cmd += ["--eval-args", settings.eval_args]
    if settings.nproc:
        cmd += ["--nproc", str(settings.nproc)]
    return cmd


def check_run_info(rdir: Path, settings: DownstreamSettings, codec: Run, codec_step: int) -> None:
    """Record what the directory is started with; other settings or another codec is an error."""
    path = rdir / RUN_INFO
    info = {"settings": settings.record(), "key": settings.key(), "codec_run": codec.key,
            "codec_model": str((codec.dir / "model").resolve()), "codec_step": codec_step}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("key") != info["key"] or old.get("codec_step") != codec_step or old.get("codec_run") != codec.key:
            raise ValueError(f"{rdir} was started with other settings or another codec ({path}):\n  before: "
                             f"{old.get('codec_run')} step {old.get('codec_step')}, {old.get('settings')}\n  now:    "
                             f"{codec.key} step {codec_step}, {info['settings']}\n"
                             "delete that directory, or use another --out")
    rdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(info, indent=2) + "\n")


# ------------------------------------------------------------------------------------------ running
def shared_aligner(plan: Plan, settings: DownstreamSettings, codec: Run, recipe: Optional[Path] = None) -> Path:
    """<out>/downstream/aligner, trained once (run.sh stage 4 on `codec`'s dump) if not finished yet.
    A second invocation that gets here meanwhile waits on the lock, then finds it done."""
    import fcntl
    adir = Path(plan.out) / DOWNSTREAM / ALIGNER
    adir.mkdir(parents=True, exist_ok=True)
    with open(adir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (adir / "exp" / ALIGN_SENTINEL).is_file():
            return adir
        info = adir / "aligner_run.json"
        if not info.is_file():       # the codec whose dump lists the utterances (any run frames them alike)
            atomic_write_text(info, json.dumps({"codec_run": codec.key, "corpus": settings.corpus}) + "\n")
        first = json.loads(info.read_text())["codec_run"]
        codec = next((r for r in plan.runs() if r.key == first), codec)
        data, exp = prepare(adir, codec.dir / "model", settings)
        cmd = recipe_command(settings, 0, data, exp, recipe or RUN_SH, stop_stage=4)
        log.info("the shared aligner: run.sh stage 4 on %s's dump\n$ %s", codec.key, shlex.join(cmd))
        _run_recipe(cmd, adir / COST, "the shared aligner: run.sh stage 4", exp)
        return adir


def run_one(plan: Plan, drun: DownstreamRun, settings: DownstreamSettings, recipe: Optional[Path] = None) -> dict:
    """Stages 4-8 of run.sh (or `recipe`) on the codec run of `drun` (resuming), then its result.json."""
    codec = codec_run(plan, drun)
    step = read_done(codec)
    if step is None or step < plan.steps:
        raise RuntimeError(f"{drun.key}: codec run {codec.key} is not trained to {plan.steps} steps yet")
    aligner = shared_aligner(plan, settings, codec, recipe)
    check_run_info(drun.dir, settings, codec, step)
    data, exp = prepare(drun.dir, codec.dir / "model", settings, aligner)
    cmd = recipe_command(settings, drun.seed, data, exp, recipe or RUN_SH)
    log.info("%s downstream: %s, codec %s\n$ %s", drun.key, settings.budget(), codec.key, shlex.join(cmd))
    cost, wall = _run_recipe(cmd, drun.dir / COST, f"{drun.key} downstream: run.sh", exp)
    result = write_result(drun, settings, codec.key, step, cost)
    log.info("%s downstream: TTS WER %s, PER %s, SIM %s (%.1f min)", drun.key,
             *(fmt_num(row_value(result, "tts", k)) for k in ("wer", "per", "sim")), wall / 60)
    return result


def _run_recipe(cmd: Sequence[str], cost_file: Path, what: str, exp: Path) -> tuple[dict, float]:
    """Run `cmd` (a run.sh invocation) from the repository; add its wall and CPU time to `cost_file`.
    Returns (the cost totals, this invocation's wall seconds); a failure is one line naming its log."""
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    proc = subprocess.run(cmd, cwd=ROOT)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed with exit code {proc.returncode} (log: {exp / 'run.log'}; run the "
                           f"ablation again to resume from its sentinels)")
    return add_cost(cost_file, seconds=wall, cpu_seconds=cpu), wall


def write_result(drun: DownstreamRun, settings: DownstreamSettings, codec_key: str, codec_step: int,
                 cost: dict) -> dict:
    """collect() the finished run's numbers into <run dir>/result.json."""
    result = collect(drun, settings, codec_key, codec_step, cost)
    atomic_write_text(drun.dir / RESULT, json.dumps(result, indent=1) + "\n")
    return result


def last_valid(exp: Path, part: str) -> dict:
    """The part's last dev row (exp/<part>/valid.jsonl): step, cross-entropy and top-1 per codebook, and
    their means over codebooks (`ce`, `top1`; the AR has codebook 1 only, the NAR codebooks 2..n_q)."""
    path = exp / part / "valid.jsonl"
    rows = list(iter_jsonl(path)) if path.is_file() else []
    if not rows:
        return {}
    last = rows[-1]
    ce = {k: v for k, v in last.items() if k.startswith("loss_k")}
    top1 = {k: v for k, v in last.items() if k.startswith("acc_k")}
    return {"step": last.get("step"), "ce": _mean(ce.values()), "top1": _mean(top1.values()), **ce, **top1}


def _mean(vals) -> Optional[float]:
    vals = [float(v) for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def collect(drun: DownstreamRun, settings: DownstreamSettings, codec_key: str, codec_step: int, cost: dict) -> dict:
    """The numbers the ablation report needs, from run.sh's outputs in <run dir>/exp."""
    exp = drun.dir / "exp"
    report_path = exp / "eval" / "report.json"
    if not report_path.is_file():
        raise FileNotFoundError(f"{report_path}: run.sh finished without stage 8's report")
    rep = json.loads(report_path.read_text())
    rows = {k: {f: rep["rows"][k].get(f) for f in ROW_FIELDS if f in rep["rows"][k]}
            for k in ROWS if k in rep.get("rows", {})}
    parts = {}
    for part in ("ar", "nar"):
        summ = exp / part / "train_summary.json"
        s = json.loads(summ.read_text()) if summ.is_file() else {}
        parts[part] = {"step": s.get("step"), "minutes": s.get("minutes"), "stop_reason": s.get("stop_reason"),
                       "valid": last_valid(exp, part)}
    setting = rep.get("setting", {})
    return {"variant": drun.variant, "seed": drun.seed, "run": drun.key, "codec_run": codec_key,
            "codec_step": codec_step, "key": settings.key(), "settings": settings.record(),
            "budget": settings.budget(), "rows": rows, "sim_floor": rep.get("sim_floor"),
            "targets": rep.get("targets", {}), "tts": parts,
            "n_items": setting.get("n_items"), "n_speakers": setting.get("n_speakers"), "n_q": setting.get("n_q"),
            "asr": setting.get("asr"), "asr_constrained": setting.get("asr_constrained"),
            "speaker_encoder": setting.get("speaker_encoder"), "report": str(exp / "eval" / "report.md"),
            **cost}


def row_value(result: dict, row: str, key: str):
    """`key` ("wer", "per", "sim", ...) of `row` ("ground_truth", "resynthesis", "gt_cb1_nar", "tts") of a
    result; None if absent."""
    return (result.get("rows", {}).get(row) or {}).get(key)


def run_all(plan: Plan, settings: DownstreamSettings, druns: Sequence[DownstreamRun], budget: Optional[int] = None,
            recipe: Optional[Path] = None) -> int:
    """Run every downstream run not done yet (at most `budget` of them). Returns how many ran."""
    ran = 0
    for d in progress(list(druns), desc="downstream TTS", unit="run", every=1):
        st = status(plan, d, settings)
        if st == "done":
            log.info("%s downstream: done, skipping", d.key)
            continue
        if st == "no_codec":
            log.info("%s downstream: waiting for its codec run (%d steps)", d.key, plan.steps)
            continue
        if (d.dir / "exp" / ".done.stage8.eval").is_file() and (d.dir / RUN_INFO).is_file():
            # run.sh finished but result.json is missing (deleted, or killed between the two): re-collect
            info = json.loads((d.dir / RUN_INFO).read_text())
            if info.get("key") == settings.key():
                cost = json.loads((d.dir / COST).read_text()) if (d.dir / COST).is_file() else {}
                write_result(d, settings, info["codec_run"], info["codec_step"], cost)
                log.info("%s downstream: collected the finished stage 8 report", d.key)
                continue
        if budget is not None and ran >= budget:
            log.info("%s downstream: not started (--stop-after reached)", d.key)
            continue
        run_one(plan, d, settings, recipe)
        ran += 1
    return ran
