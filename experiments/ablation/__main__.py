"""NDVQ vs RVQ ablation: train every (variant, seed) run, evaluate it, write the report. Resumable.

    python -m experiments.ablation --downstream                      # mini corpus, 5 variants x seeds 0,1,2,
                                                                     # codec and TTS at the recipe's budgets
    python -m experiments.ablation --runs ndvq,rvq --stop-after 2     # a piece at a time
    python -m experiments.ablation --report-only                     # rebuild the report from finished runs
    python -m experiments.ablation --corpus libritts --nproc 8 --downstream   # the paper configs on 8 GPUs
    python -m experiments.ablation --steps 400 --downstream-only --ar-steps 300 --nar-steps 100

The codec budget (--steps) defaults to the base config's train.max_steps (codec_mini.yaml: the recipe's
stage 3 budget), with the wall-clock cap off. --downstream (after the codec runs) or --downstream-only
(finished codec runs only: nothing is trained or evaluated again) trains the TTS on every codec run's
codes through egs/libritts/run.sh stages 4-8 (every seed of --seeds, or --downstream-seeds; the same
step budget for every run, by default the TTS config's AR and NAR train.max_steps) and adds stage 8's
WER / PER / SIM / pitch and the AR's and NAR's dev cross-entropy and top-1 to the report, per variant
as mean ± sd over seeds with a verdict against RVQ.

Run it again after an interruption: finished runs are skipped, an interrupted one resumes from its
newest checkpoint, a run whose result.json was deleted is evaluated again, and the report is rebuilt
from whatever has finished (missing runs are marked). See docs/ablation.md.
"""
from __future__ import annotations

import core.runtime  # noqa: F401  (first, before torch loads: the OpenMP waiting policy of core/runtime.py)

import argparse
import logging
import sys
from pathlib import Path

from codec.evaluation.metrics import available_metrics
from core.logs import setup_logging
from core.progress import progress

from . import archive, report
from .downstream import DEFAULT_TTS_CONF, TINY_TTS, DownstreamSettings, downstream_runs, recipe_budget, run_all
from .plan import RECIPE, VARIANT_NAMES, Plan, run_status
from .runner import (EvalSettings, evaluate_run, load_result, prepare_f0, select_runs, speaker_balanced,
                     train_run)

log = logging.getLogger("experiments.ablation")
DEFAULT_CONF = {"mini": "conf/codec_mini.yaml", "libritts": "conf/codec_paper.yaml"}
# The budgets are the recipe's, read when the command runs (never copied here): the codec's --steps is the
# base config's train.max_steps, the TTS's --ar-steps / --nar-steps the TTS config's (downstream.recipe_budget).
TINY = {"steps": 3, "seeds": "0", "eval_items": 2, "robust_items": 2, "metrics": ["si_sdr", "mel"]}
TINY_DOWNSTREAM = {"ar_steps": 2, "nar_steps": 2, "zs_per_speaker": 1, "eval_args": "--no-dnsmos --examples 1"}


def _floats(s: str) -> tuple[float, ...]:
    return tuple(float(x) for x in s.replace(",", " ").split())


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.ablation", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--corpus", choices=sorted(DEFAULT_CONF), default="mini")
    p.add_argument("--data-dir", type=Path, default=None, help="recipe data dir (default egs/libritts/data)")
    p.add_argument("--out", type=Path, default=None, help="default egs/libritts/exp/ablation")
    p.add_argument("--codec-conf", type=Path, default=None,
                   help="base codec config (default conf/codec_mini.yaml; codec_paper.yaml for libritts)")
    p.add_argument("--train-manifest", action="append", default=None,
                   help="training manifest(s) (default <data>/manifests/train-clean-100.jsonl)")
    p.add_argument("--test-manifest", default=None, help="held-out manifest (default <data>/manifests/test-clean.jsonl)")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (the budget; default: the "
                   "base config's train.max_steps, 1400 in codec_mini.yaml)")
    p.add_argument("--seeds", default=None, help="comma-separated (default 0,1,2)")
    p.add_argument("--variants", default=",".join(VARIANT_NAMES), help="variants of the ablation (default: all)")
    p.add_argument("--runs", default=None, help="only these: variant names or variant/seedN, comma-separated")
    p.add_argument("--stop-after", type=int, default=None, help="train at most N runs in this invocation")
    p.add_argument("--train-args", default="", help="extra codec overrides for every run, e.g. 'optim.lr=1e-3'")
    p.add_argument("--launcher", choices=("accelerate", "python"), default="accelerate")
    p.add_argument("--nproc", type=int, default=0, help="training processes (default: GPUs, or 1 on CPU)")
    p.add_argument("--eval-items", type=int, default=None, help="clean evaluation utterances (default 20)")
    p.add_argument("--robust-items", type=int, default=None, help="utterances for robustness/flips (default 10)")
    p.add_argument("--robust-bandwidths", choices=("ends", "all"), default="ends",
                   help="noisy-input scores at the lowest and top bitrate (ends) or every bitrate")
    p.add_argument("--metrics", nargs="+", default=None,
                   help="default: pesq stoi si_sdr mel, plus visqol when installed")
    p.add_argument("--robust-metrics", nargs="+", default=None,
                   help="metrics of the noisy-input rows (default: the clean rows' without visqol)")
    p.add_argument("--snrs", type=_floats, default=(20.0, 10.0), help="input SNRs in dB (default '20 10')")
    p.add_argument("--latent-levels", type=_floats, default=(0.05, 0.1, 0.2, 0.5),
                   help="latent noise std relative to the latent's std")
    p.add_argument("--jobs", type=int, default=2, help="metric worker processes (and F0 tracking of a missing cache)")
    p.add_argument("--no-pitch", action="store_true", help="no F0 error / GPE / VDE of the clean rows")
    p.add_argument("--report-only", action="store_true", help="no training or evaluation: rebuild the report")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--archive", type=Path, default=None, help="at the end, copy the report and every finished "
                   "run's small files (numbers, not weights) to this folder, e.g. docs/ablation_mini")
    p.add_argument("--from-archive", type=Path, default=None, help="first, copy the finished runs of an "
                   "--archive folder into --out where absent: resume in a new clone where it stopped")
    d = p.add_argument_group("downstream TTS (run.sh stages 4-8 on each codec run's codes)")
    d.add_argument("--downstream", action="store_true", help="after the codec runs, train and score the TTS "
                   "on each codec run's codes (runs whose codec is finished)")
    d.add_argument("--downstream-only", action="store_true", help="the downstream TTS only: finished codec "
                   "runs are reused, nothing is trained or evaluated on the codec side")
    d.add_argument("--downstream-seeds", "--downstream-seed", dest="downstream_seeds", default=None,
                   help="comma-separated subset of --seeds whose codec runs feed a TTS (default: every seed)")
    d.add_argument("--ar-steps", type=int, default=None, help="AR steps per run (default: the TTS config's AR "
                   "train.max_steps, 700 in tts_mini.yaml)")
    d.add_argument("--nar-steps", type=int, default=None, help="NAR steps per run (default: the TTS config's NAR "
                   "train.max_steps, 600 in tts_mini.yaml)")
    d.add_argument("--tts-args", default="", help="TTS overrides of both parts, e.g. 'optim.lr=1e-3'")
    d.add_argument("--ar-args", default="", help="AR-only overrides (run.sh --ar-args; steps come from --ar-steps)")
    d.add_argument("--nar-args", default="", help="NAR-only overrides (run.sh --nar-args)")
    d.add_argument("--tts-conf", default=None, help="run.sh --tts-conf (default: conf/tts_mini.yaml for mini, "
                   "conf/tts_paper.yaml for libritts); its step counts are the default budget")
    d.add_argument("--zs-per-speaker", type=int, default=None, help="run.sh --zs-per-speaker (default: run.sh's, 8 test "
                   "items a speaker as the recipe)")
    d.add_argument("--synth-args", default=None, help="run.sh --synth-args; a value that starts with -- needs the = form: "
                   "--synth-args='--top-k 10'")
    d.add_argument("--eval-args", default=None, help="run.sh --eval-args, e.g. --eval-args='--no-dnsmos' (the = form)")
    p.add_argument("--tiny", action="store_true", help="mechanics only (tests): "
                   + ", ".join(f"{k}={v}" for k, v in {**TINY, **TINY_DOWNSTREAM}.items())
                   + " and a 1-layer TTS unless given")
    args = p.parse_args(argv)
    if args.downstream_only and args.report_only:
        p.error("--downstream-only and --report-only exclude each other")
    return args


def downstream_settings(args, data: Path):
    """The downstream TTS settings of this invocation (None without --downstream / --downstream-only)."""
    tiny = TINY_DOWNSTREAM if args.tiny else {}
    if not (args.downstream or args.downstream_only):
        return None
    conf = Path(args.tts_conf).resolve() if args.tts_conf else RECIPE / DEFAULT_TTS_CONF[args.corpus]
    tts_args, ar_args, nar_args = ((TINY_TTS if args.tiny else ()) + tuple(args.tts_args.split()),
                                   tuple(args.ar_args.split()), tuple(args.nar_args.split()))
    ar, nar = args.ar_steps or tiny.get("ar_steps"), args.nar_steps or tiny.get("nar_steps")
    if ar is None or nar is None:
        # the recipe's budget as stages 5-6 resolve it (with the given overrides: a max_steps there counts)
        rec_ar, _ = recipe_budget(conf, [*tts_args, *ar_args])
        _, rec_nar = recipe_budget(conf, [*tts_args, *nar_args])
        ar, nar = ar or rec_ar, nar or rec_nar
    return DownstreamSettings(
        data_dir=str(data.resolve()), corpus=args.corpus, ar_steps=ar, nar_steps=nar,
        tts_args=tts_args, ar_args=ar_args, nar_args=nar_args,
        tts_conf=str(Path(args.tts_conf).resolve()) if args.tts_conf else None,
        zs_per_speaker=args.zs_per_speaker if args.zs_per_speaker is not None else tiny.get("zs_per_speaker"),
        synth_args=args.synth_args if args.synth_args is not None else tiny.get("synth_args", ""),
        eval_args=args.eval_args if args.eval_args is not None else tiny.get("eval_args", ""),
        nproc=args.nproc)


def downstream_seeds(args, plan: Plan) -> tuple[int, ...]:
    """--downstream-seeds (a subset of --seeds), default every seed of the plan."""
    if not args.downstream_seeds:
        return plan.seeds
    seeds = tuple(int(s) for s in str(args.downstream_seeds).split(",") if s.strip())
    bad = [s for s in seeds if s not in plan.seeds]
    if bad:
        raise ValueError(f"--downstream-seeds {bad}: not among --seeds {list(plan.seeds)}")
    return seeds


def build(args) -> tuple[Plan, EvalSettings, object]:
    data = args.data_dir or RECIPE / "data"
    conf = args.codec_conf or RECIPE / DEFAULT_CONF[args.corpus]
    out = args.out or RECIPE / "exp" / "ablation"
    tiny = TINY if args.tiny else {}
    seeds = tuple(int(s) for s in (args.seeds or tiny.get("seeds") or "0,1,2").split(","))
    train = tuple(str(Path(m).resolve()) for m in (args.train_manifest or [data / "manifests" / "train-clean-100.jsonl"]))
    for m in train:
        if not Path(m).is_file():
            raise FileNotFoundError(f"training manifest not found: {m} (run egs/libritts/run.sh --stop-stage 2 first)")
    test = Path(args.test_manifest or data / "manifests" / "test-clean.jsonl")
    if not test.is_file():
        raise FileNotFoundError(f"test manifest not found: {test}")
    if not Path(conf).is_file():
        raise FileNotFoundError(f"codec config not found: {conf}")
    steps = args.steps or tiny.get("steps") or base_steps(Path(conf), args.train_args)
    plan = Plan(out=out.resolve(), codec_conf=conf.resolve(), train_manifests=train, steps=steps, seeds=seeds,
                variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
                train_args=tuple(args.train_args.split()))
    trains = not (args.report_only or args.downstream_only)
    # the harmonic decoder's F0 caches: built (once) and checked before the first run when runs may train
    prepare_f0(plan, args.jobs, make=trains)
    metrics = args.metrics or tiny.get("metrics") or (["pesq", "stoi", "si_sdr", "mel"]
                                                      + (["visqol"] if available_metrics()["visqol"] else []))
    items = args.eval_items or tiny.get("eval_items") or 20
    settings = EvalSettings(manifest=str(plan.out / "eval_items.jsonl"), items=items,
                            robust_items=min(items, args.robust_items or tiny.get("robust_items") or 10),
                            robust_bandwidths=args.robust_bandwidths, metrics=tuple(metrics),
                            robust_metrics=tuple(args.robust_metrics or [m for m in metrics if m != "visqol"]),
                            snrs_db=tuple(args.snrs), latent_levels=tuple(args.latent_levels),
                            pitch=not args.no_pitch, jobs=args.jobs)
    if trains:
        speaker_balanced(test, items, Path(settings.manifest))
    downstream_seeds(args, plan)                    # a bad --downstream-seeds fails before anything runs
    return plan, settings, downstream_settings(args, data)


def base_steps(conf: Path, train_args: str) -> int:
    """The base codec config's train.max_steps (with --train-args): the recipe's own codec budget."""
    from codec.config import CodecConfig
    from core.config import load_config
    return int(load_config(CodecConfig, [conf], train_args.split()).train.max_steps)


def run(plan: Plan, settings: EvalSettings, args, downstream=None) -> dict:
    """Seed by seed: every variant's codec run of the seed, then (with --downstream) their TTS, so a
    partial ablation is a complete comparison of its first seeds (codec and downstream alike)."""
    chosen = select_runs(plan.runs(), args.runs)
    keys = {r.key for r in chosen}
    dseeds = downstream_seeds(args, plan)
    trained = 0
    for seed in plan.seeds:
        if not (args.report_only or args.downstream_only):
            for r in progress([r for r in chosen if r.seed == seed], desc=f"ablation runs, seed {seed}",
                              unit="run", every=1):
                status = run_status(r, plan.steps)
                if status == "done" and load_result(r, settings) is not None:
                    log.info("%s: done, skipping", r.key)
                    continue
                if status in ("partial", "missing"):
                    if args.stop_after is not None and trained >= args.stop_after:
                        log.info("%s: not started (--stop-after %d reached)", r.key, args.stop_after)
                        continue
                    train_run(plan, r, args.launcher, args.nproc)
                    trained += 1
                evaluate_run(r, settings)
        if downstream is not None and not args.report_only and seed in dseeds:
            # --runs picks (variant, seed) pairs for the downstream as for the codec: variant or variant/seedN
            druns = [d for d in downstream_runs(plan, (seed,)) if d.key in keys]
            left = None if args.stop_after is None else max(0, args.stop_after - trained)
            trained += run_all(plan, downstream, druns, left)
    return report.build(plan, settings, plots=not args.no_plots, downstream=downstream)


def main(argv=None) -> None:
    setup_logging()
    args = parse_args(argv)
    try:
        plan, settings, downstream = build(args)
        if args.archive and Path(args.archive).resolve() == plan.out:
            raise ValueError(f"--archive {args.archive}: that is the ablation's own --out; name another folder")
        if args.from_archive:
            archive.restore(args.from_archive, plan.out)
    except (FileNotFoundError, ValueError) as e:     # one line: a missing manifest, F0 cache, bad seed, ...
        log.error("%s", e)
        sys.exit(2)
    log.info("ablation: %d variants x %d seeds, %d steps a run, out %s", len(plan.variants), len(plan.seeds),
             plan.steps, plan.out)
    if downstream is not None:
        log.info("downstream TTS: codec seeds %s, %s per run, out %s/downstream",
                 ",".join(map(str, downstream_seeds(args, plan))), downstream.budget(), plan.out)
    run(plan, settings, args, downstream)
    if args.archive:
        archive.archive(plan.out, args.archive)


if __name__ == "__main__":
    main()
