"""NDVQ vs RVQ ablation: train every (variant, seed) run, evaluate it, write the report. Resumable.

    python -m experiments.ablation --steps 600                        # mini corpus, 4 variants x seeds 0,1,2
    python -m experiments.ablation --runs ndvq,rvq --stop-after 2     # a piece at a time
    python -m experiments.ablation --report-only                     # rebuild the report from finished runs
    python -m experiments.ablation --corpus libritts --nproc 8 --steps 100000
    python -m experiments.ablation --steps 400 --downstream-only --ar-steps 600 --nar-steps 200   # the TTS on each

--downstream (after the codec runs) or --downstream-only (finished codec runs only: nothing is trained
or evaluated again) trains the mini TTS on each variant's codes through egs/libritts/run.sh stages 4-8
(one codec seed, the same step budget for every variant) and adds its WER / SIM to the report.

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

from . import report
from .downstream import TINY_TTS, DownstreamSettings, run_all
from .plan import RECIPE, VARIANT_NAMES, Plan, run_status
from .runner import EvalSettings, evaluate_run, load_result, select_runs, speaker_balanced, train_run

log = logging.getLogger("experiments.ablation")
DEFAULT_CONF = {"mini": "conf/codec_mini.yaml", "libritts": "conf/codec_paper.yaml"}
DEFAULT_STEPS = {"mini": 800, "libritts": 100_000}   # mini: 4 x 3 runs + evaluation in ~3 h on 2 cores
TINY = {"steps": 3, "seeds": "0", "eval_items": 2, "robust_items": 2, "metrics": ["si_sdr", "mel"]}
# mini TTS budget per variant (the recipe's 6 + 3.5 wall-clock minutes made 616 + 218 steps)
DEFAULT_TTS_STEPS = {"mini": (600, 200), "libritts": (300_000, 300_000)}
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
    p.add_argument("--steps", type=int, default=None, help="training steps per run (the budget; default "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items()) + ")")
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
    p.add_argument("--jobs", type=int, default=2, help="metric worker processes")
    p.add_argument("--report-only", action="store_true", help="no training or evaluation: rebuild the report")
    p.add_argument("--no-plots", action="store_true")
    d = p.add_argument_group("downstream TTS (run.sh stages 4-8 on each variant's codec)")
    d.add_argument("--downstream", action="store_true", help="after the codec runs, train and score the TTS "
                   "on each variant's codes (variants whose codec run is finished)")
    d.add_argument("--downstream-only", action="store_true", help="the downstream TTS only: finished codec "
                   "runs are reused, nothing is trained or evaluated on the codec side")
    d.add_argument("--downstream-seed", type=int, default=None, help="codec seed feeding the TTS (default: "
                   "the first of --seeds)")
    d.add_argument("--ar-steps", type=int, default=None, help="AR steps per variant (default "
                   + ", ".join(f"{k} {v[0]}" for k, v in DEFAULT_TTS_STEPS.items()) + ")")
    d.add_argument("--nar-steps", type=int, default=None, help="NAR steps per variant (default "
                   + ", ".join(f"{k} {v[1]}" for k, v in DEFAULT_TTS_STEPS.items()) + ")")
    d.add_argument("--tts-args", default="", help="TTS overrides of both parts, e.g. 'optim.lr=1e-3'")
    d.add_argument("--ar-args", default="", help="AR-only overrides (run.sh --ar-args; steps come from --ar-steps)")
    d.add_argument("--nar-args", default="", help="NAR-only overrides (run.sh --nar-args)")
    d.add_argument("--tts-conf", default=None, help="run.sh --tts-conf (default: conf/tts_mini.yaml for mini)")
    d.add_argument("--zs-per-speaker", type=int, default=None, help="run.sh --zs-per-speaker (default 2)")
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


def downstream_settings(args, plan: Plan, data: Path):
    """The downstream TTS settings of this invocation (None without --downstream / --downstream-only)."""
    tiny = TINY_DOWNSTREAM if args.tiny else {}
    if not (args.downstream or args.downstream_only):
        return None
    seed = plan.seeds[0] if args.downstream_seed is None else args.downstream_seed
    if seed not in plan.seeds:
        raise ValueError(f"--downstream-seed {seed} is not one of --seeds {list(plan.seeds)}")
    ar, nar = DEFAULT_TTS_STEPS[args.corpus]
    return DownstreamSettings(
        data_dir=str(data.resolve()), corpus=args.corpus, seed=seed,
        ar_steps=args.ar_steps or tiny.get("ar_steps") or ar, nar_steps=args.nar_steps or tiny.get("nar_steps") or nar,
        tts_args=(TINY_TTS if args.tiny else ()) + tuple(args.tts_args.split()),
        ar_args=tuple(args.ar_args.split()), nar_args=tuple(args.nar_args.split()),
        tts_conf=str(Path(args.tts_conf).resolve()) if args.tts_conf else None,
        zs_per_speaker=args.zs_per_speaker if args.zs_per_speaker is not None else tiny.get("zs_per_speaker", 2),
        synth_args=args.synth_args if args.synth_args is not None else tiny.get("synth_args", ""),
        eval_args=args.eval_args if args.eval_args is not None else tiny.get("eval_args", ""),
        nproc=args.nproc)


def build(args) -> tuple[Plan, EvalSettings, object]:
    data = args.data_dir or RECIPE / "data"
    conf = args.codec_conf or RECIPE / DEFAULT_CONF[args.corpus]
    out = args.out or RECIPE / "exp" / "ablation"
    tiny = TINY if args.tiny else {}
    steps = args.steps or tiny.get("steps") or DEFAULT_STEPS[args.corpus]
    seeds = tuple(int(s) for s in (args.seeds or tiny.get("seeds") or "0,1,2").split(","))
    train = tuple(str(Path(m).resolve()) for m in (args.train_manifest or [data / "manifests" / "train-clean-100.jsonl"]))
    for m in train:
        if not Path(m).is_file():
            raise FileNotFoundError(f"training manifest not found: {m} (run egs/libritts/run.sh --stop-stage 2 first)")
    test = Path(args.test_manifest or data / "manifests" / "test-clean.jsonl")
    if not test.is_file():
        raise FileNotFoundError(f"test manifest not found: {test}")
    plan = Plan(out=out.resolve(), codec_conf=conf.resolve(), train_manifests=train, steps=steps, seeds=seeds,
                variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
                train_args=tuple(args.train_args.split()))
    metrics = args.metrics or tiny.get("metrics") or (["pesq", "stoi", "si_sdr", "mel"]
                                                      + (["visqol"] if available_metrics()["visqol"] else []))
    items = args.eval_items or tiny.get("eval_items") or 20
    settings = EvalSettings(manifest=str(plan.out / "eval_items.jsonl"), items=items,
                            robust_items=min(items, args.robust_items or tiny.get("robust_items") or 10),
                            robust_bandwidths=args.robust_bandwidths, metrics=tuple(metrics),
                            robust_metrics=tuple(args.robust_metrics or [m for m in metrics if m != "visqol"]),
                            snrs_db=tuple(args.snrs), latent_levels=tuple(args.latent_levels), jobs=args.jobs)
    if not (args.report_only or args.downstream_only):
        speaker_balanced(test, items, Path(settings.manifest))
    return plan, settings, downstream_settings(args, plan, data)


def run(plan: Plan, settings: EvalSettings, args, downstream=None) -> dict:
    chosen = select_runs(plan.runs(), args.runs)
    trained = 0
    if not (args.report_only or args.downstream_only):
        for r in progress(chosen, desc="ablation runs", unit="run", every=1):
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
    if downstream is not None and not args.report_only:
        # --runs picks variants (a variant/seedN entry counts when N is the downstream seed)
        variants = [v for v in plan.variants if any(r.variant.name == v and r.seed == downstream.seed for r in chosen)]
        left = None if args.stop_after is None else max(0, args.stop_after - trained)
        run_all(plan, downstream, variants, left)
    return report.build(plan, settings, plots=not args.no_plots, downstream=downstream)


def main(argv=None) -> None:
    setup_logging()
    args = parse_args(argv)
    try:
        plan, settings, downstream = build(args)
    except (FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        sys.exit(2)
    log.info("ablation: %d variants x %d seeds, %d steps a run, out %s", len(plan.variants), len(plan.seeds),
             plan.steps, plan.out)
    if downstream is not None:
        log.info("downstream TTS: codec seed %d, %s per variant, out %s/downstream", downstream.seed,
                 downstream.budget(), plan.out)
    run(plan, settings, args, downstream)


if __name__ == "__main__":
    main()
