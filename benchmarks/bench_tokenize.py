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


def busy_seconds() -> float:
    """CPU seconds every process of the machine has used so far (/proc/stat; 0 where missing)."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")       # all but idle and iowait


def wait_quiet(max_wait: float, below: float = 0.3, interval: float = 3.0) -> float:
    """Wait (up to max_wait s) until the machine's CPU use over `interval` is below `below` cores;
    returns the last measured use. The lead's training jobs share these 2 cores."""
    t_end = time.monotonic() + max_wait
    while True:
        b0 = busy_seconds()
        time.sleep(interval)
        used = (busy_seconds() - b0) / interval
        if used < below or time.monotonic() >= t_end:
            return used


def workers_ab(manifest: Path, model: Path, reps: int, max_wait: float, scratch: Path) -> list[dict]:
    """In-process `tokenize` of one manifest, 1 worker vs the default (the cores), alternating: the
    encode loop's x real time without start-up, i.e. how well the worker threads scale."""
    sys.path.insert(0, str(ROOT))
    from codec.tokenize import tokenize
    rows = []
    for rep in range(reps):
        for workers in ((1, None) if rep % 2 == 0 else (None, 1)):
            out = scratch / f"ab-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            quiet = wait_quiet(max_wait)
            b0, c0 = busy_seconds(), time.process_time()
            s = tokenize([str(manifest)], str(model), str(out), progress=False, device="cpu", workers=workers)
            others = max(0.0, (busy_seconds() - b0) - (time.process_time() - c0)) / s["wall_seconds"]
            rows.append({"workers": s["workers"], "x_real_time": s["hours_per_hour"], "others_cores": others,
                         "idle_before": quiet})
            print(f"workers {s['workers']}: {s['hours_per_hour']:.1f}x real time (encode loop), "
                  f"others {others:.2f} cores (before: {quiet:.2f})", flush=True)
    return rows


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
    busy0 = busy_seconds()
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        r = subprocess.run(["bash", str(tree / "egs/libritts/run.sh"), "--stage", "4", "--stop-stage", "4",
                            "--data-dir", str(d), "--exp-dir", str(e)], stdout=fh, stderr=subprocess.STDOUT,
                           env=env, cwd=tree)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = busy_seconds() - busy0
    if r.returncode != 0:
        raise SystemExit(f"stage 4 failed in {tree} (exit {r.returncode}); see {log}")
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    # other processes' CPU during the run, in cores: a direct measure of how much of the 2 cores we had
    return {"wall_seconds": wall, "cpu_seconds": cpu, "others_cores": max(0.0, busy - cpu) / wall,
            "load_before": load0, "load_after": os.getloadavg()[0]}


def dump_files(dump: Path, paths: bool) -> dict[str, bytes]:
    """Every file of a dump that defines it; header.json without its creation time (and without the
    manifest and model paths unless `paths`: another directory's dump names other paths)."""
    out = {}
    for p in sorted(dump.iterdir()):
        if p.name.startswith("."):
            continue
        data = p.read_bytes()
        if p.name == "header.json":
            h = json.loads(data)
            h.pop("created", None)
            if not paths:
                h["extra"].pop("manifests", None)
                h["extra"].pop("model", None)
            data = json.dumps(h, sort_keys=True).encode()
        out[p.name] = data
    return out


def differences(a: Path, b: Path, subsets, paths: bool = True) -> list[str]:
    bad = []
    for s in subsets:
        fa, fb = dump_files(a / s, paths), dump_files(b / s, paths)
        if fa.keys() != fb.keys():
            bad.append(f"{s}: files {sorted(fa.keys() ^ fb.keys())}")
        bad += [f"{s}/{k}" for k in sorted(fa.keys() & fb.keys()) if fa[k] != fb[k]]
    return bad


# long: one measurement protocol (quiet-machine wait, interleaved runs, byte comparison, table), read top to bottom
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old-rev", default="33d6828", help="git revision of the old path (run.sh + code)")
    p.add_argument("--data", type=Path, default=ROOT / "egs/libritts/data", help="recipe data dir (read only)")
    p.add_argument("--model", type=Path, default=ROOT / "egs/libritts/exp/codec/model")
    p.add_argument("--reference", type=Path, default=None,
                   help="an existing dump directory (e.g. egs/libritts/data/codes) the codes must equal")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--paths", nargs="+", default=["old", "new"], choices=["old", "new"])
    p.add_argument("--wait-quiet", type=float, default=0.0,
                   help="before each run wait up to this many seconds for the machine to be idle")
    p.add_argument("--workers-ab", type=Path, default=None,
                   help="only compare 1 worker with the default on this manifest, in process (no start-up)")
    p.add_argument("--scratch", type=Path, default=Path("/tmp/bench_tokenize"))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/tokenize")
    args = p.parse_args()

    if args.workers_ab is not None:
        rows = workers_ab(args.workers_ab, args.model, args.reps, args.wait_quiet, args.scratch)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name(args.out.name + "_workers.json").write_text(json.dumps(
            {"manifest": str(args.workers_ab), "runs": rows,
             "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=2) + "\n")
        return 0
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
            # the same directory for both paths, so that the headers' paths agree too
            d, e = scratch_recipe(args.scratch / "run", args.data, args.model, SUBSETS)
            wait_quiet(args.wait_quiet)
            m = run_stage4(trees[name], d, e, args.scratch / f"{name}-{rep}.log")
            m["x_real_time"] = secs / m["wall_seconds"]
            runs[name].append(m)
            last[name] = args.scratch / f"{name}-codes"
            shutil.rmtree(last[name], ignore_errors=True)
            shutil.move(d / "codes", last[name])
            print(f"rep {rep} {name}: {m['wall_seconds']:.1f} s wall, {m['x_real_time']:.1f}x real time, "
                  f"{m['cpu_seconds']:.0f} CPU s, others {m['others_cores']:.2f} cores, "
                  f"load {m['load_before']:.2f} -> {m['load_after']:.2f}", flush=True)
    identical = {}
    if "old" in last and "new" in last:
        identical["old vs new"] = differences(last["old"], last["new"], SUBSETS)
    if args.reference is not None:
        for name, codes in last.items():
            identical[f"{name} vs {args.reference}"] = differences(codes, args.reference, SUBSETS, paths=False)
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
             "| path | wall s (runs) | x real time (runs) | median x real time | CPU s (runs) | "
             "other processes' CPU, cores (runs) | load before -> after |",
             "|---|---|---|---|---|---|---|"]
    for k, v in runs.items():
        col = lambda key, fmt, sep=", ": sep.join(format(r[key], fmt) for r in v)  # noqa: E731
        loads = "; ".join(f"{r['load_before']:.2f} -> {r['load_after']:.2f}" for r in v)
        lines.append(f"| {label[k]} | {col('wall_seconds', '.0f')} | {col('x_real_time', '.1f')} | {med[k]:.1f} | "
                     f"{col('cpu_seconds', '.0f')} | {col('others_cores', '.2f')} | {loads} |")
    if res["ratio"]:
        lines.append(f"\nRatio new / old: {res['ratio']:.2f}x.")
    for what, bad in identical.items():
        lines.append(f"\nDumps {what}: {'byte-identical' if not bad else 'DIFFERENT'} (every file; "
                     f"header.json up to its creation time{'' if what == 'old vs new' else ' and paths'}).")
    lines.append(f"\nCommand: `nice -n 10 .venv/bin/python benchmarks/bench_tokenize.py "
                 f"{' '.join(sys.argv[1:])}`.")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 1 if any(identical.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
