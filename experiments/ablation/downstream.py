"""Downstream check of the ablation: the mini TTS trained on each variant's codes, scored by stage 8.

For each variant, one codec run (`--downstream-seed`, default seed 0) feeds egs/libritts/run.sh stages
4-8 unchanged, in a directory of its own (the recipe is reused, not re-implemented):

    <out>/downstream/<variant>/
        data/            manifests/, phonemes/ (and the corpus) -> symlinks to the recipe's data dir;
                         .done.stage{0,1,2}.* so run.sh never redoes them; codes/ = stage 4's dump
        exp/codec/model  -> symlink to runs/<variant>/seed<k>/model (the trained codec); with
                         .done.stage3.codec, run.sh never trains a codec here
        exp/{ar,nar,synth,eval}/   stages 5-8 (run.sh's own layout and sentinels)
        downstream_run.json   the settings and codec the directory was started with
        result.json           WER / SIM rows of exp/eval/report.json + budget and cost: "done"

The TTS budget is steps (`train.max_steps`, wall-clock budget off), the same for every variant. An
interrupted variant resumes through run.sh's sentinels (stage 4 skips finished shards, stages 5-6
resume from their newest checkpoint); a variant with result.json is skipped.
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

from core.io import atomic_write_text, iter_jsonl
from core.progress import progress

from .plan import RECIPE, RESULT, ROOT, Plan, Run, add_cost, cpu_seconds, load_cached, read_done
from .summary import fmt_num

log = logging.getLogger("experiments.ablation")

RUN_SH = RECIPE / "run.sh"
DOWNSTREAM = "downstream"
RUN_INFO = "downstream_run.json"
COST = "cost.json"
ROWS = ("ground_truth", "resynthesis", "tts")
# what stages 4-8 read from the recipe's data dir (shared, read only) and the sentinels that say so
SHARED = ("manifests", "phonemes", "mini")
DATA_STAGES = ((0, "corpus"), (1, "manifests"), (2, "phonemes"))

DownstreamStatus = Literal["done", "partial", "missing", "no_codec"]

# --tiny: a TTS small enough to train a few steps in seconds (as tests/recipe/test_recipe_tts.py)
TINY_TTS = ("model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.ffn_mult=2", "model.n_q=4",
            "data.min_seconds=0.3", "data.max_frames_per_batch=300", "data.num_workers=0",
            "data.prompt_min_seconds=0.1", "data.prompt_max_seconds=0.4", "train.valid_every=2",
            "train.ckpt_every=2")


@dataclass(frozen=True)
class DownstreamSettings:
    """What defines a variant's downstream run (everything but nproc goes into its key)."""
    data_dir: str                          # the recipe's data dir (manifests/, phonemes/)
    corpus: str = "mini"                   # run.sh --corpus (subsets, default TTS config)
    seed: int = 0                          # the codec seed whose model feeds the TTS
    ar_steps: int = 600                    # AR optimizer steps (the budget; minutes are off)
    nar_steps: int = 200
    tts_args: tuple[str, ...] = ()         # TTS overrides of both parts (before ar_args / nar_args)
    ar_args: tuple[str, ...] = ()
    nar_args: tuple[str, ...] = ()
    tts_conf: Optional[str] = None         # run.sh --tts-conf (default: its corpus's)
    zs_per_speaker: int = 2                # run.sh --zs-per-speaker
    synth_args: str = ""
    eval_args: str = ""
    nproc: int = 0                         # training processes (run.sh --nproc; 0: its default)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ar_steps < 1 or self.nar_steps < 1:
            raise ValueError(f"TTS step budgets must be >= 1 (AR {self.ar_steps}, NAR {self.nar_steps})")

    def part_overrides(self, part: str) -> list[str]:
        """run.sh --ar-args / --nar-args: the step budget last, so it wins over any given args."""
        steps = self.ar_steps if part == "ar" else self.nar_steps
        own = self.ar_args if part == "ar" else self.nar_args
        return [*self.tts_args, *own, "train.max_minutes=null", f"train.max_steps={steps}"]

    def record(self) -> dict:
        d = asdict(self)
        for k in ("nproc", "extra"):
            d.pop(k)
        return d

    def key(self) -> str:
        return hashlib.sha1(json.dumps(self.record(), sort_keys=True).encode()).hexdigest()[:12]

    def budget(self) -> str:
        return f"AR {self.ar_steps} + NAR {self.nar_steps} steps"


def variant_dir(out: Path, variant: str) -> Path:
    return Path(out) / DOWNSTREAM / variant


def codec_run(plan: Plan, variant: str, seed: int) -> Run:
    for r in plan.runs():
        if r.variant.name == variant and r.seed == seed:
            return r
    raise ValueError(f"--downstream-seed {seed}: not one of the ablation's seeds {list(plan.seeds)}")


def status(plan: Plan, variant: str, settings: DownstreamSettings) -> DownstreamStatus:
    """done: result.json with these settings; partial: started; missing: not started, codec trained;
    no_codec: the variant's codec run has not reached the step budget yet."""
    vdir = variant_dir(plan.out, variant)
    if load(vdir, settings) is not None:
        return "done"
    done = read_done(codec_run(plan, variant, settings.seed))
    if done is None or done < plan.steps:
        return "no_codec"
    return "partial" if (vdir / RUN_INFO).is_file() else "missing"


def load(vdir: Path, settings: Optional[DownstreamSettings] = None) -> Optional[dict]:
    """A variant's cached result (None if absent, or made with other settings when given)."""
    return load_cached(Path(vdir) / RESULT, "key", settings.key() if settings is not None else None)


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


def prepare(vdir: Path, codec_model: Path, settings: DownstreamSettings) -> tuple[Path, Path]:
    """Build <vdir>/{data,exp} for run.sh stages 4-8 (idempotent). Returns (data dir, exp dir)."""
    src = Path(settings.data_dir).resolve()
    for sub in ("manifests", "phonemes"):
        if not (src / sub).is_dir():
            raise FileNotFoundError(f"{src / sub} not found: the downstream TTS needs run.sh stages 0-2 "
                                    f"of {src} (bash egs/libritts/run.sh --stop-stage 2)")
    if not (Path(codec_model) / "config.json").is_file():
        raise FileNotFoundError(f"{codec_model}: no exported codec (config.json) to tokenize with")
    data, exp = vdir / "data", vdir / "exp"
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
    return data, exp


def recipe_command(settings: DownstreamSettings, data: Path, exp: Path, recipe: Path = RUN_SH) -> list[str]:
    """The run.sh invocation of stages 4-8 for one variant."""
    cmd = ["bash", str(recipe), "--stage", "4", "--stop-stage", "8", "--corpus", settings.corpus,
           "--data-dir", str(data), "--exp-dir", str(exp),
           "--ar-args", " ".join(settings.part_overrides("ar")),
           "--nar-args", " ".join(settings.part_overrides("nar")),
           "--zs-per-speaker", str(settings.zs_per_speaker)]
    if settings.tts_conf:
        cmd += ["--tts-conf", str(Path(settings.tts_conf).resolve())]
    if settings.synth_args:
        cmd += ["--synth-args", settings.synth_args]
    if settings.eval_args:
        cmd += ["--eval-args", settings.eval_args]
    if settings.nproc:
        cmd += ["--nproc", str(settings.nproc)]
    return cmd


def check_run_info(vdir: Path, settings: DownstreamSettings, codec: Run, codec_step: int) -> None:
    """Record what the directory is started with; other settings or another codec is an error."""
    path = vdir / RUN_INFO
    info = {"settings": settings.record(), "key": settings.key(), "codec_run": codec.key,
            "codec_model": str((codec.dir / "model").resolve()), "codec_step": codec_step}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("key") != info["key"] or old.get("codec_step") != codec_step or old.get("codec_run") != codec.key:
            raise ValueError(f"{vdir} was started with other settings or another codec ({path}):\n  before: "
                             f"{old.get('codec_run')} step {old.get('codec_step')}, {old.get('settings')}\n  now:    "
                             f"{codec.key} step {codec_step}, {info['settings']}\n"
                             "delete that directory, or use another --out")
    vdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(info, indent=2) + "\n")


# ------------------------------------------------------------------------------------------ running
def run_variant(plan: Plan, variant: str, settings: DownstreamSettings, recipe: Optional[Path] = None) -> dict:
    """Stages 4-8 of run.sh (or `recipe`) on `variant`'s codec (resuming), then its result.json."""
    codec = codec_run(plan, variant, settings.seed)
    step = read_done(codec)
    if step is None or step < plan.steps:
        raise RuntimeError(f"{variant}: codec run {codec.key} is not trained to {plan.steps} steps yet")
    vdir = variant_dir(plan.out, variant)
    check_run_info(vdir, settings, codec, step)
    data, exp = prepare(vdir, codec.dir / "model", settings)
    cmd = recipe_command(settings, data, exp, recipe or RUN_SH)
    log.info("%s downstream: %s, codec %s\n$ %s", variant, settings.budget(), codec.key, shlex.join(cmd))
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    proc = subprocess.run(cmd, cwd=ROOT)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} downstream: run.sh failed with exit code {proc.returncode} (log: "
                           f"{exp / 'run.log'}; run the ablation again to resume from its sentinels)")
    cost = add_cost(vdir / COST, seconds=wall, cpu_seconds=cpu)
    result = write_result(vdir, settings, codec.key, step, cost)
    log.info("%s downstream: TTS WER %s, SIM %s (%.1f min)", variant, fmt_num(row_value(result, "tts", "wer")),
             fmt_num(row_value(result, "tts", "sim")), wall / 60)
    return result


def write_result(vdir: Path, settings: DownstreamSettings, codec_key: str, codec_step: int, cost: dict) -> dict:
    """collect() the finished run's numbers into <vdir>/result.json."""
    result = collect(vdir, settings, codec_key, codec_step, cost)
    atomic_write_text(vdir / RESULT, json.dumps(result, indent=1) + "\n")
    return result


def collect(vdir: Path, settings: DownstreamSettings, codec_key: str, codec_step: int, cost: dict) -> dict:
    """The numbers the ablation report needs, from run.sh's outputs in <vdir>/exp."""
    exp = vdir / "exp"
    report_path = exp / "eval" / "report.json"
    if not report_path.is_file():
        raise FileNotFoundError(f"{report_path}: run.sh finished without stage 8's report")
    rep = json.loads(report_path.read_text())
    rows = {k: {f: rep["rows"][k].get(f) for f in ("wer", "sim", "sim_std", "n", "missing")}
            for k in ROWS if k in rep.get("rows", {})}
    parts = {}
    for part in ("ar", "nar"):
        summ = exp / part / "train_summary.json"
        s = json.loads(summ.read_text()) if summ.is_file() else {}
        valid = [r for r in iter_jsonl(exp / part / "valid.jsonl")] if (exp / part / "valid.jsonl").is_file() else []
        acc = {k: v for k, v in (valid[-1] if valid else {}).items() if k.startswith("acc_")}
        parts[part] = {"step": s.get("step"), "minutes": s.get("minutes"), "stop_reason": s.get("stop_reason"),
                       "valid_top1": acc}
    setting = rep.get("setting", {})
    return {"variant": vdir.name, "codec_run": codec_key, "codec_step": codec_step, "key": settings.key(),
            "settings": settings.record(), "budget": settings.budget(), "rows": rows,
            "sim_floor": rep.get("sim_floor"), "targets": rep.get("targets", {}), "tts": parts,
            "n_items": setting.get("n_items"), "n_speakers": setting.get("n_speakers"), "n_q": setting.get("n_q"),
            "asr": setting.get("asr"), "asr_constrained": setting.get("asr_constrained"),
            "speaker_encoder": setting.get("speaker_encoder"), "report": str(exp / "eval" / "report.md"),
            **cost}


def row_value(result: dict, row: str, key: str):
    """`key` ("wer", "sim", ...) of `row` ("ground_truth", "resynthesis", "tts") of a result; None if absent."""
    return (result.get("rows", {}).get(row) or {}).get(key)


def run_all(plan: Plan, settings: DownstreamSettings, variants: Sequence[str], budget: Optional[int] = None,
            recipe: Optional[Path] = None) -> int:
    """Run every variant's downstream not done yet (at most `budget` of them). Returns how many ran."""
    ran = 0
    for v in progress(list(variants), desc="downstream TTS", unit="variant", every=1):
        st = status(plan, v, settings)
        if st == "done":
            log.info("%s downstream: done, skipping", v)
            continue
        if st == "no_codec":
            log.info("%s downstream: waiting for its codec run (seed %d, %d steps)", v, settings.seed, plan.steps)
            continue
        if budget is not None and ran >= budget:
            log.info("%s downstream: not started (--stop-after reached)", v)
            continue
        vdir = variant_dir(plan.out, v)
        if (vdir / "exp" / ".done.stage8.eval").is_file() and (vdir / RUN_INFO).is_file():
            # run.sh finished but result.json is missing (deleted, or killed between the two): re-collect
            info = json.loads((vdir / RUN_INFO).read_text())
            if info.get("key") == settings.key():
                cost = json.loads((vdir / COST).read_text()) if (vdir / COST).is_file() else {}
                write_result(vdir, settings, info["codec_run"], info["codec_step"], cost)
                log.info("%s downstream: collected the finished stage 8 report", v)
                continue
        run_variant(plan, v, settings, recipe)
        ran += 1
    return ran

