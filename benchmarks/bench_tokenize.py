"""Recipe stage 4 (tokenization) end to end: real-time factor of the whole stage, old path vs new.

    nice -n 10 .venv/bin/python benchmarks/bench_tokenize.py --old-rev 33d6828     # ~8 min per rep, 2 cores

Each run is `bash egs/libritts/run.sh --stage 4 --stop-stage 4` exactly as the recipe runs it
(`accelerate launch`, start-up, codec load, every subset), timed by the wall clock from start to end,
on a scratch data/exp directory whose manifests, phonemes and codec are symlinks to `--data` and
`--model` (read only). "old" is the run.sh + code of `--old-rev` (extracted with `git archive`),
"new" the working tree; the two alternate in every repetition so that both see the same machine
load. x real time = audio seconds tokenized / wall seconds. Also recorded: the CPU seconds of the
run (user + sys of every process it started) and the load average before and after each run.

Every dump must be byte-identical to the other path's (shards, shard indexes, index.jsonl, plan,
skipped lists; header.json up to its "created" time) and, with --reference, to an existing dump
(the recipe's own egs/libritts/data/codes): else the benchmark fails.

Writes benchmarks/results/tokenize.{json,md}.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBSETS = ("train-clean-100", "dev-clean", "test-clean")     # run.sh's mini subsets


def extract_rev(rev: str, dest: Path) -> Path:
    """The tree of git revision `rev` under dest (no .git, no venv); run it with the shared venv.

    scripts/setup_env.sh and pyproject.toml are the working tree's, so that run.sh's set-up step
    finds the shared venv's stamp up to date and never reinstalls anything into it.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    blob = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    for name in ("scripts/setup_env.sh", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def scratch_recipe(base: Path, data: Path, model: Path, subsets) -> tuple[Path, Path]:
    """A fresh data/exp pair for one run: manifests, phonemes and codec linked read-only."""
    if base.exists():
        shutil.rmtree(base)
    d, e = base / "data", base / "exp"
    (d / "manifests").mkdir(parents=True)
    (d / "phonemes").mkdir(parents=True)
    (e / "codec").mkdir(parents=True)
    for s in subsets:
        (d / "manifests" / f"{s}.jsonl").symlink_to((data / "manifests" / f"{s}.jsonl").resolve())
        (d / "phonemes" / f"{s}.jsonl").symlink_to((data / "phonemes" / f"{s}.jsonl").resolve())
    for f in (data / "phonemes").iterdir():
        if f.suffix != ".jsonl" and not (d / "phonemes" / f.name).exists():
            (d / "phonemes" / f.name).symlink_to(f.resolve())      # frontend.json, tokens.txt
    (e / "codec" / "model").symlink_to(model.resolve())
    return d, e


def audio_seconds(data: Path, subsets) -> float:
    total = 0.0
    for s in subsets:
        with open(data / "manifests" / f"{s}.jsonl") as fh:
            total += sum(float(json.loads(line)["duration"]) for line in fh if line.strip())
    return total


def run_stage4(tree: Path, d: Path, e: Path, log: Path) -> dict:
    """Time one `run.sh --stage 4 --stop-stage 4` (wall clock, children's CPU, load average)."""
    env = dict(os.environ, NDVQ_VENV=str(ROOT / ".venv"))
    env.pop("PYTHONPATH", None)
    env.pop("OMP_NUM_THREADS", None)
    load0 = os.getloadavg()[0]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        r = subprocess.run(["bash", str(tree / "egs/libritts/run.sh"), "--stage", "4", "--stop-stage", "4",
                            "--data-dir", str(d), "--exp-dir", str(e)], stdout=fh, stderr=subprocess.STDOUT,
                           env=env, cwd=tree)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"stage 4 failed in {tree} (exit {r.returncode}); see {log}")
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"wall_seconds": wall, "cpu_seconds": cpu, "load_before": load0, "load_after": os.getloadavg()[0]}


def dump_files(dump: Path) -> dict[str, bytes]:
    """Every file of a dump that defines it, header.json without its creation time."""
    out = {}
    for p in sorted(dump.iterdir()):
        if p.name.startswith("."):
            continue
        data = p.read_bytes()
        if p.name == "header.json":
            h = json.loads(data)
            h.pop("created", None)
            data = json.dumps(h, sort_keys=True).encode()
        out[p.name] = data
    return out


def differences(a: Path, b: Path, subsets) -> list[str]:
    bad = []
    for s in subsets:
        fa, fb = dump_files(a / s), dump_files(b / s)
        if fa.keys() != fb.keys():
            bad.append(f"{s}: files {sorted(fa.keys() ^ fb.keys())}")
        bad += [f"{s}/{k}" for k in sorted(fa.keys() & fb.keys()) if fa[k] != fb[k]]
    return bad


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old-rev", default="33d6828", help="git revision of the old path (run.sh + code)")
    p.add_argument("--data", type=Path, default=ROOT / "egs/libritts/data", help="recipe data dir (read only)")
    p.add_argument("--model", type=Path, default=ROOT / "egs/libritts/exp/codec/model")
    p.add_argument("--reference", type=Path, default=None,
                   help="an existing dump directory (e.g. egs/libritts/data/codes) the codes must equal")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--paths", nargs="+", default=["old", "new"], choices=["old", "new"])
    p.add_argument("--scratch", type=Path, default=Path("/tmp/bench_tokenize"))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/tokenize")
    args = p.parse_args()

    secs = audio_seconds(args.data, SUBSETS)
    old_sha = subprocess.run(["git", "rev-parse", "--short", args.old_rev], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
    trees = {"new": ROOT}
    if "old" in args.paths:
        trees["old"] = extract_rev(args.old_rev, args.scratch / "old-tree")
    runs: dict[str, list[dict]] = {k: [] for k in args.paths}
    last: dict[str, Path] = {}
    for rep in range(args.reps):
        for name in (args.paths if rep % 2 == 0 else args.paths[::-1]):
            d, e = scratch_recipe(args.scratch / f"{name}-run", args.data, args.model, SUBSETS)
            m = run_stage4(trees[name], d, e, args.scratch / f"{name}-{rep}.log")
            m["x_real_time"] = secs / m["wall_seconds"]
            runs[name].append(m)
            last[name] = d / "codes"
            print(f"rep {rep} {name}: {m['wall_seconds']:.1f} s wall, {m['x_real_time']:.1f}x real time, "
                  f"{m['cpu_seconds']:.0f} CPU s, load {m['load_before']:.2f} -> {m['load_after']:.2f}", flush=True)
    identical = {}
    if "old" in last and "new" in last:
        identical["old vs new"] = differences(last["old"], last["new"], SUBSETS)
    if args.reference is not None:
        for name, codes in last.items():
            identical[f"{name} vs {args.reference}"] = differences(codes, args.reference, SUBSETS)
    for what, bad in identical.items():
        print(f"{what}: {'byte-identical' if not bad else 'DIFFERENT: ' + ', '.join(bad[:10])}")

    med = {k: statistics.median(r["x_real_time"] for r in v) for k, v in runs.items()}
    res = {"audio_seconds": secs, "subsets": SUBSETS, "old_rev": old_sha, "runs": runs,
           "median_x_real_time": med, "ratio": med["new"] / med["old"] if len(med) == 2 else None,
           "identical": {k: not v for k, v in identical.items()},
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    label = {"old": f"old ({old_sha}: one launch per subset)", "new": "new (working tree: one launch)"}
    lines = [f"# Recipe stage 4 (tokenization): whole-stage speed\n",
             f"`run.sh --stage 4 --stop-stage 4` on {', '.join(SUBSETS)} ({secs / 3600:.2f} h of audio), "
             f"wall clock including start-up; {os.cpu_count()} CPUs; {res['date']}.\n",
             "| path | wall s (runs) | x real time (runs) | median x real time | CPU s (runs) | load before -> after |",
             "|---|---|---|---|---|---|"]
    for k, v in runs.items():
        col = lambda key, fmt, sep=", ": sep.join(format(r[key], fmt) for r in v)  # noqa: E731
        loads = "; ".join(f"{r['load_before']:.2f} -> {r['load_after']:.2f}" for r in v)
        lines.append(f"| {label[k]} | {col('wall_seconds', '.0f')} | {col('x_real_time', '.1f')} | {med[k]:.1f} | "
                     f"{col('cpu_seconds', '.0f')} | {loads} |")
    if res["ratio"]:
        lines.append(f"\nRatio new / old: {res['ratio']:.2f}x.")
    for what, bad in identical.items():
        lines.append(f"\nDumps {what}: {'byte-identical (header up to its creation time)' if not bad else 'DIFFERENT'}.")
    lines.append(f"\nCommand: `nice -n 10 .venv/bin/python benchmarks/bench_tokenize.py "
                 f"{' '.join(sys.argv[1:])}`.")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 1 if any(identical.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
