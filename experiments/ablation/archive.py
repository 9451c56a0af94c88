"""The ablation's evidence in a size a repository can hold, and a new run directory seeded from it.

    python -m experiments.ablation --report-only --archive docs/ablation_mini   # report + every run's numbers
    python -m experiments.ablation --downstream --from-archive docs/ablation_mini   # resume elsewhere

A finished run is a few hundred MB (checkpoints, exported codec, code dumps, the TTS), but the report needs
only its small files: a codec run's sentinel, overrides, resolved config, cached evaluation, training summary
and loss log; a downstream run's cached stage 8 numbers and stage 8's report; the record of the aligner
every downstream run shares (its dev scores and durations; not its 7 MB weights: a run added after a restore
trains a new shared aligner). `archive` copies those of every finished run
(and the report with its plots) into a folder, with machine paths made relative (committed reports name
none). `restore` copies an archive's finished runs into an --out where they are absent, so a new clone (or
another machine) resumes the ablation where the archive stopped: the cached results are keyed on settings,
not paths (EvalSettings.key, DownstreamSettings.key), and finished runs are never retrained.

A restored codec run has no weights: its downstream TTS must be in the archive too, or the codec retrained
(delete the run). The ablation trains seed by seed (codec runs, then their TTS), so an archive taken
between invocations holds complete pairs.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from core.io import atomic_write_text, portable_path

from .downstream import ALIGN_SENTINEL, ALIGNER, DOWNSTREAM
from .downstream import RUN_INFO as DOWNSTREAM_INFO
from .plan import DONE_TRAIN, RESULT, RUN_INFO

log = logging.getLogger("experiments.ablation")

CODEC_FILES = (DONE_TRAIN, RUN_INFO, RESULT, "config.json", "train_summary.json", "train_cpu.json", "losses.jsonl")
DOWNSTREAM_FILES = (RESULT, DOWNSTREAM_INFO, "cost.json", "exp/eval/report.md")   # + stage 8's own report
# the shared forced aligner's record (downstream.shared_aligner): what it was trained on, its dev scores and
# the durations every TTS run trained on. Not its 7 MB weights (the repository holds no model files), and
# not its sentinel: a run added after a restore trains a new shared aligner, recorded beside this one.
ALIGNER_FILES = ("aligner_run.json", "cost.json", "exp/aligner/summary.json", "exp/aligner/valid.jsonl")
REPORT_FILES = ("report.md", "report.json", "eval_items.jsonl")
ABSOLUTE = re.compile(r"(?<![\w.:/])/[^\s`'\"(),;\[\]]+")   # a path in prose or in an override, not a URL's
LOSS_KEYS = ("step", "mel", "skipped")       # what the learning-curve plot reads of losses.jsonl


def _finished(out: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """(run directory relative to `out`, the files to keep) of every finished codec and downstream run."""
    runs = [(d.relative_to(out), CODEC_FILES) for d in sorted(out.glob("runs/*/seed*"))
            if (d / DONE_TRAIN).is_file() and (d / RESULT).is_file()]
    runs += [(d.relative_to(out), DOWNSTREAM_FILES) for d in sorted(out.glob(f"{DOWNSTREAM}/*/seed*"))
             if d.parent.name != ALIGNER and (d / RESULT).is_file()]
    aligner = out / DOWNSTREAM / ALIGNER
    if (aligner / "exp" / ALIGN_SENTINEL).is_file():
        durations = tuple(p.relative_to(aligner).as_posix() for p in sorted((aligner / "data" / "durations").glob("*")))
        runs.append((aligner.relative_to(out), ALIGNER_FILES + durations))
    return runs


def _copy(src: Path, dst: Path, portable_from: Path) -> None:
    """One small file with every machine path in it made relative to `portable_from` (in prose, JSON strings
    and override strings alike: "train.exp_dir=/...", "[/a.jsonl,/b.jsonl]"); losses.jsonl thinned to what
    the report plots."""
    def text(t: str) -> str:
        return ABSOLUTE.sub(lambda m: portable_path(m.group(0), portable_from), t)

    if src.suffix == ".json":
        atomic_write_text(dst, text(json.dumps(json.loads(src.read_text()), indent=1)) + "\n")
    elif src.suffix == ".jsonl":
        rows = [json.loads(ln) for ln in src.read_text().splitlines() if ln.strip()]
        if src.name == "losses.jsonl":
            rows = [{k: r[k] for k in LOSS_KEYS if k in r} for r in rows]
        atomic_write_text(dst, "".join(text(json.dumps(r, ensure_ascii=False)) + "\n" for r in rows))
    else:
        atomic_write_text(dst, text(src.read_text()))


def archive(out: Path, dest: Path) -> int:
    """Copy the report, its plots and every finished run's small files from `out` to `dest`. Returns the
    number of runs archived."""
    out, dest = Path(out).resolve(), Path(dest).resolve()
    if out == dest:
        raise ValueError(f"--archive {dest}: that is the ablation's own --out")
    runs = _finished(out)
    for rel, files in runs:
        for name in files:
            if (out / rel / name).is_file():
                (dest / rel / name).parent.mkdir(parents=True, exist_ok=True)
                _copy(out / rel / name, dest / rel / name, out)
    for name in REPORT_FILES:
        if (out / name).is_file():
            dest.mkdir(parents=True, exist_ok=True)
            _copy(out / name, dest / name, out)
    if (out / "plots").is_dir():
        shutil.copytree(out / "plots", dest / "plots", dirs_exist_ok=True)
    log.info("archived %d finished runs and the report of %s in %s", len(runs), out, dest)
    return len(runs)


def restore(src: Path, out: Path) -> int:
    """Copy the finished runs of archive `src` into `out` where `out` has no such run directory yet (a run
    started there is never overwritten). Returns the number of runs restored."""
    src, out = Path(src).resolve(), Path(out).resolve()
    if not src.is_dir():
        raise FileNotFoundError(f"--from-archive {src}: no such folder")
    restored = 0
    for rel, files in _finished(src):      # the aligner's record never: it has no sentinel (no weights)
        if (out / rel).exists():
            continue
        for name in files:
            if (src / rel / name).is_file():
                (out / rel / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel / name, out / rel / name)
        restored += 1
    log.info("restored %d finished runs from %s into %s", restored, src, out)
    return restored
