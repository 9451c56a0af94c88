"""Tokenize a corpus: manifest(s) (+ phonemes) -> a code dump (codec.code_dump) for language models.

    python -m codec.tokenize --manifest data/manifests/train-clean-100.jsonl \
        --phonemes data/phonemes/train-clean-100.jsonl --model exp/codec/model \
        --out data/codes/train-clean-100 --bandwidth 6
    python -m codec.tokenize --model exp/codec/model \
        --out data/codes/dev-clean --manifest data/manifests/dev-clean.jsonl --phonemes data/phonemes/dev-clean.jsonl \
        --out data/codes/test-clean --manifest data/manifests/test-clean.jsonl --phonemes data/phonemes/test-clean.jsonl
    accelerate launch --multi_gpu --num_processes 2 -m codec.tokenize ...   (CPU: ACCELERATE_USE_CPU=true)

- One --out: every --manifest goes into that dump. N --out: N dumps in one run (`tokenize_jobs`), the
  i-th from the i-th --manifest and --phonemes, each byte for byte what a run of its own writes; the
  start-up and codec load are paid once and the workers run on across dump ends (the recipe's stage
  4 tokenizes all its subsets in one launch).
- Shards come from `plan_shards` (deterministic; each shard sorted longest first) and are stored in
  plan.json; rank r of W processes takes shards i % W == r; rank 0 merges the index after a barrier.
- Inside a shard (sorted longest first), utterances are submitted in groups of similar length
  (`--batch-seconds`, `--max-batch`) to `--workers` threads (default: the usable cores divided among
  the machine's ranks, so 2 on a 2-core box, 1 per rank under a 2-rank launch; not torch's thread
  count, which `accelerate launch` sets to 1 even for one process) that each load and encode one
  utterance at a time with one intra-op thread; the next group is submitted before the previous one is written, so
  the workers never wait for each other or for the writer. Why: the mini codec's layers are too
  small for two intra-op threads to share well (about 1.2x of one thread, and OpenMP barriers stall
  whenever the cores are shared), while independent utterances scale about 2x. Codes are bitwise
  those of `Codec.encode` on the utterance alone (codec.api) with one intra-op thread, whatever the
  number of workers. For the mini codec 1 and 2 intra-op threads give identical codes (dev corpus,
  96/96 files); the paper model's wider convolutions round differently per thread count (oneDNN; one
  utterance in six had a flip at stage 14), so its dumps now no longer depend on the core count.
- Resumable: a shard is written atomically (npy, then its index last); a rerun skips complete
  shards and never reads a half-written one.
- A corrupt or unreadable audio file is skipped and reported (`skipped.jsonl`, and a warning), never
  a crash.
- Header: codec checkpoint sha256 (of model.safetensors), sample rate, frame rate, n_q, codebook size.
  Index rows: id, shard, offset, frames, speaker, text, phonemes, duration, scale, num_samples.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from core.io import atomic_write_text, read_jsonl
from core.logs import setup_logging
from core.runtime import usable_cores

from .code_dump import DumpWriter, make_header, plan_shards
from .code_dump.plan import make_batches
from .data import read_rows

logger = logging.getLogger("codec.tokenize")
SKIPPED_FILE = "skipped.jsonl"


def read_phonemes(paths: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in paths:
        for row in read_jsonl(p):
            ph = row.get("phonemes")
            out[str(row["id"])] = " ".join(ph) if isinstance(ph, list) else ph
    return out


def _frontend_of(phonemes: Sequence[str]) -> Optional[dict]:
    """Settings + fingerprint of the text front end beside the phoneme files (None without phonemes)."""
    if not phonemes:
        return None
    from data_prep.frontend import TextFrontend

    dirs = {Path(p).parent for p in phonemes}
    if len(dirs) != 1:
        raise ValueError(f"phoneme files from several directories (front ends): {sorted(map(str, dirs))}")
    try:
        return TextFrontend.load(dirs.pop()).to_dict()
    except FileNotFoundError as e:
        logger.warning("no front end recorded in the dump header: %s", e)
        return None


@dataclass(frozen=True)
class DumpJob:
    """One code dump to write: the manifests (+ phoneme files) whose utterances go into `out_dir`."""
    manifests: tuple[str, ...]
    out_dir: str
    phonemes: tuple[str, ...] = ()


def default_workers(cpu: bool, local_processes: int) -> int:
    """Encoding threads per process: the usable cores shared among this machine's ranks (1 on GPU).

    Counted from the cores, not from torch.get_num_threads(): `accelerate launch` exports
    OMP_NUM_THREADS=1 for a single CPU process, which left a whole core idle (the workers run one
    intra-op thread each whatever OMP_NUM_THREADS says; --workers limits them).
    """
    if not cpu:
        return 1
    return max(1, usable_cores() // max(1, local_processes))


@dataclass
class _Prepared:
    """A job with its rows read and its dump opened: what the encoding loop needs."""
    job: DumpJob
    by_id: dict[str, dict]
    durations: dict[str, float]
    phon: dict[str, str]
    plan: list[list[str]]
    dump: DumpWriter
    pending: list[int]


def _prepare(job: DumpJob, codec, n_q: int, model: str, utts_per_shard: int, rank: int, world: int) -> _Prepared:
    """Read a job's manifests and phonemes, plan its shards, open (or resume) its dump directory."""
    by_id: dict[str, dict] = {}
    for r in read_rows(job.manifests):
        if str(r["id"]) in by_id:
            raise ValueError(f"duplicate utterance id {r['id']!r} in manifests {list(job.manifests)}")
        by_id[str(r["id"])] = r
    _check_audio_exists(job.manifests, by_id)
    frontend = _frontend_of(job.phonemes)
    durations = {u: float(r["duration"]) for u, r in by_id.items()}
    plan = plan_shards(durations.items(), utts_per_shard=utts_per_shard)
    header = make_header(codec.checkpoint_sha256 or "unknown", codec.sample_rate, codec.frame_rate, n_q,
                         codec.codebook_size,
                         extra={"bandwidth_kbps": codec.kbps(n_q), "manifests": [str(m) for m in job.manifests],
                                "model": str(model), **({"frontend": frontend} if frontend else {})})
    dump = DumpWriter(Path(job.out_dir), header)
    dump.set_plan(plan)
    return _Prepared(job, by_id, durations, read_phonemes(job.phonemes), plan, dump,
                     dump.pending_shards(len(plan), rank, world))


def _check_audio_exists(manifests: Sequence[str], by_id: dict[str, dict]) -> None:
    """Before any encoding: a job without rows, or none of whose audio files exists (a manifest moved away
    from its relative paths), is an error, not an empty dump."""
    if not by_id or not any(Path(r["path"]).is_file() for r in by_id.values()):
        first = next((r["path"] for r in by_id.values()), None)
        raise ValueError(f"manifests {list(manifests)}: " + ("no utterances" if first is None else
                         f"none of the {len(by_id)} audio files exists (first: {first}; relative paths are read "
                         f"from the manifest's folder and the folders above it)") + ": nothing to tokenize")


def tokenize(manifests: Sequence[str], model: str, out_dir: str, phonemes: Sequence[str] = (),
             bandwidth: Optional[float] = None, n_q: Optional[int] = None, utts_per_shard: int = 500,
             batch_seconds: float = 120.0, max_batch: int = 16, max_shards: Optional[int] = None,
             progress: bool = True, device: Optional[str] = None, workers: Optional[int] = None) -> dict:
    """Run (this rank's part of) one tokenization job; returns a summary dict (see `tokenize_jobs`)."""
    run = tokenize_jobs([DumpJob(tuple(map(str, manifests)), str(out_dir), tuple(map(str, phonemes)))], model,
                        bandwidth, n_q, utts_per_shard, batch_seconds, max_batch, max_shards, progress, device,
                        workers)
    dump = run.pop("dumps")[0]
    dump.pop("out")
    return {**run, **dump}


def tokenize_jobs(jobs: Sequence[DumpJob], model: str, bandwidth: Optional[float] = None,
                  n_q: Optional[int] = None, utts_per_shard: int = 500, batch_seconds: float = 120.0,
                  max_batch: int = 16, max_shards: Optional[int] = None, progress: bool = True,
                  device: Optional[str] = None, workers: Optional[int] = None) -> dict:
    """Run (this rank's part of) several tokenization jobs with one codec and one pool of workers.

    The dumps are written one after the other, each exactly as a job of its own would write it;
    the workers run ahead across shard and dump boundaries, so they never wait at one, and the
    process start-up and codec load are paid once (the recipe tokenizes all its subsets in one
    launch). max_shards counts shards over all jobs, in order. Returns the run's summary with one
    entry per job under "dumps".
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from accelerate import PartialState

    from .api import Codec

    outs = [str(Path(j.out_dir).resolve()) for j in jobs]
    if len(set(outs)) != len(outs):
        raise ValueError(f"two jobs write to the same dump directory: {[j.out_dir for j in jobs]}")
    # cpu=True when there is no GPU: with cpu=False accelerate would not join a multi-process CPU launch
    state = PartialState(cpu=(device == "cpu" or not torch.cuda.is_available()))
    rank, world = state.process_index, state.num_processes
    codec = Codec.from_pretrained(model, device=device or state.device)
    n_q = codec.resolve_n_q(bandwidth, n_q)
    # No global torch.set_grad_enabled(False) here: this function also runs inside other programs
    # (and the test suite), and Codec.encode already runs under inference_mode in every thread.

    prepared = [_prepare(j, codec, n_q, model, utts_per_shard, rank, world) for j in jobs]
    _limit_shards(prepared, max_shards)
    bar = _progress_bar(prepared, rank, progress)
    cpu = codec.device.type == "cpu"
    threads = torch.get_num_threads()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    workers = max(1, workers if workers is not None else default_workers(cpu, local))
    # Every group of similar-length utterances of this run, in the order they are written.
    feeder = _Feeder([(p, batch) for p in prepared for i in p.pending
                      for batch in make_batches(p.plan[i], p.durations, batch_seconds, max_batch)],
                     _Encoder(codec, n_q))

    t0 = time.perf_counter()
    # one intra-op thread per worker (set in each worker thread: OpenMP's setting is per thread)
    pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1 if workers > 1 else threads,))
    try:
        summaries = [_write_dump(p, feeder, pool, codec.sample_rate, bar, batch_seconds, max_batch)
                     for p in prepared]
    finally:
        pool.shutdown(cancel_futures=True)
        torch.set_num_threads(threads)     # the workers' setting also reaches process-wide pools (MKL)
    bar.close()
    wall = time.perf_counter() - t0
    audio_hours = sum(s["audio_hours"] for s in summaries)
    run = {"rank": rank, "world_size": world, "workers": workers, "wall_seconds": wall,
           "audio_hours": audio_hours, "hours_per_hour": audio_hours * 3600.0 / wall if wall > 0 else None,
           "dumps": summaries}
    state.wait_for_everyone()
    if state.is_main_process:
        for p, s in zip(prepared, summaries):
            if not p.dump.pending_shards(len(p.plan), 0, 1):
                s.update(_finalize(p))
    return run


def _limit_shards(prepared: list[_Prepared], max_shards: Optional[int]) -> None:
    """Keep the first `max_shards` pending shards over all jobs, in order (all with None)."""
    budget = max_shards
    for p in prepared:
        if budget is not None:
            p.pending, budget = p.pending[:budget], max(0, budget - len(p.pending))


def _progress_bar(prepared: list[_Prepared], rank: int, enabled: bool):
    """Hours of audio still to encode: a bar on a terminal, a log line every 5% in a log file
    (core.progress)."""
    from core.progress import progress as progress_of
    return progress_of(total=sum(p.durations[u] for p in prepared for i in p.pending for u in p.plan[i]) / 3600.0,
                       unit="h audio", desc=f"tokenize[{rank}]", position=rank, enabled=enabled, bar_format=
                       "{desc}: {percentage:3.0f}%|{bar}| {n:.3f}/{total:.3f} h audio [{elapsed}<{remaining}]")


class _Encoder:
    """Encodes one utterance of a job: (codes [n_q, T], scale, num_samples), or the load error."""

    def __init__(self, codec, n_q: int):
        from data_prep.audio import AudioError, load_audio
        self.codec, self.n_q, self.load, self.errors = codec, n_q, load_audio, (AudioError, OSError, ValueError)

    def __call__(self, p: _Prepared, u: str):
        try:
            wav, _ = self.load(p.by_id[u]["path"], sample_rate=self.codec.sample_rate)
        except self.errors as e:
            return e
        res = self.codec.encode(wav, self.codec.sample_rate, n_q=self.n_q)
        return res.item_codes(0).numpy(), float(res.scales[0, 0]), int(res.num_samples[0])


class _Feeder:
    """Submits the run's groups of utterances to the workers ahead of the writer: the group about to be
    written and the next one are always in flight, across shard and dump ends."""

    def __init__(self, groups: list[tuple[_Prepared, list[str]]], encode: _Encoder):
        self.groups, self.encode = groups, encode
        self.in_flight: deque = deque()
        self.next_group = 0

    def take(self, pool, expected: list[str]) -> list:
        """The futures of the next group (which must be `expected`), after queueing the one after it."""
        while self.next_group < len(self.groups) and len(self.in_flight) < 2:
            p, batch = self.groups[self.next_group]
            self.in_flight.append((batch, [pool.submit(self.encode, p, u) for u in batch]))
            self.next_group += 1
        batch, futures = self.in_flight.popleft()
        assert batch == expected        # groups are consumed in the order they were made
        return futures


def _write_dump(p: _Prepared, feeder: _Feeder, pool, sample_rate: int, bar, batch_seconds: float,
                max_batch: int) -> dict:
    """Write this rank's pending shards of one dump; its summary."""
    out = Path(p.job.out_dir)
    audio_seconds, skipped_total, utts = 0.0, 0, 0
    for i in p.pending:
        skipped: list[dict] = []
        with p.dump.shard(i) as writer:
            for batch in make_batches(p.plan[i], p.durations, batch_seconds, max_batch):
                futures = feeder.take(pool, batch)     # the next group is queued before this one is written
                for u, fut in zip(batch, futures):
                    got = fut.result()
                    if isinstance(got, Exception):
                        logger.warning("skipping %s: %s", u, got)
                        skipped.append({"id": u, "path": p.by_id[u].get("path"), "error": str(got)})
                        continue
                    audio_seconds += _add_utterance(p, writer, u, *got, sample_rate=sample_rate)
                    utts += 1
                bar.update(sum(p.durations[u] for u in batch) / 3600.0)
            # written before the shard's index (the completion marker): a rerun rewrites both
            _write_skipped(out / f"shard-{i:05d}.skipped.jsonl", skipped)
        skipped_total += len(skipped)
    return {"out": p.job.out_dir, "shards_done": len(p.pending), "utterances": utts,
            "skipped": skipped_total, "audio_hours": audio_seconds / 3600.0}


def _add_utterance(p: _Prepared, writer, u: str, codes, scale: float, num_samples: int, sample_rate: int) -> float:
    """Add one encoded utterance with its index fields to the shard; its duration in seconds."""
    r = p.by_id[u]
    if p.job.phonemes and u not in p.phon:  # phonemes=null would be silently useless to a TTS
        raise ValueError(f"utterance {u} has no phonemes in {list(p.job.phonemes)}: "
                         f"rerun the phonemes stage for its manifest")
    writer.add(u, codes, speaker=r.get("speaker"), text=r.get("text_norm", r.get("text")), phonemes=p.phon.get(u),
               duration=num_samples / sample_rate, scale=scale, num_samples=num_samples)
    return num_samples / sample_rate


def _finalize(p: _Prepared) -> dict:
    """Merge a complete dump's shard indexes and skipped lists (rank 0, after every rank is done)."""
    out = Path(p.job.out_dir)
    total = p.dump.finalize(num_shards=len(p.plan))
    skipped_rows = []
    for k in range(len(p.plan)):
        path = out / f"shard-{k:05d}.skipped.jsonl"
        if path.exists():
            skipped_rows.extend(read_jsonl(path))
    _write_skipped(out / SKIPPED_FILE, skipped_rows)
    if skipped_rows:
        logger.warning("%d utterance(s) skipped (unreadable audio), listed in %s",
                       len(skipped_rows), out / SKIPPED_FILE)
    return {"total_utterances": total, "total_skipped": len(skipped_rows)}


def _write_skipped(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def jobs_from_args(manifests: Sequence[str], phonemes: Sequence[str], outs: Sequence[str]) -> list[DumpJob]:
    """One --out: every manifest (and phoneme file) into it. N --out: N manifests (and 0 or N phoneme
    files), paired with the outs in order: one dump per manifest, all in one run."""
    if len(outs) == 1:
        return [DumpJob(tuple(manifests), outs[0], tuple(phonemes))]
    if len(manifests) != len(outs) or len(phonemes) not in (0, len(outs)):
        raise ValueError(f"{len(outs)} --out need as many --manifest (got {len(manifests)}) and 0 or as many "
                         f"--phonemes (got {len(phonemes)}), paired in order")
    return [DumpJob((m,), o, (phonemes[k],) if phonemes else ()) for k, (m, o) in enumerate(zip(manifests, outs))]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m codec.tokenize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", action="append", required=True, help="JSONL manifest (repeatable)")
    p.add_argument("--phonemes", action="append", default=[], help="phoneme JSONL {id, phonemes} (repeatable)")
    p.add_argument("--model", required=True, help="codec directory or Hub id")
    p.add_argument("--out", action="append", required=True,
                   help="dump directory; repeated N times: N dumps in one run, the i-th from the i-th "
                        "--manifest (and --phonemes)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bandwidth", type=float, default=None, help="kbps")
    g.add_argument("--n-q", type=int, default=None, help="codebooks (default: all)")
    p.add_argument("--utts-per-shard", type=int, default=500)
    p.add_argument("--batch-seconds", type=float, default=120.0,
                   help="audio seconds per submitted group (items x longest)")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=None,
                   help="encoding threads, one intra-op thread each (default: the usable cores divided "
                        "among this machine's ranks on CPU, 1 on GPU)")
    p.add_argument("--max-shards", type=int, default=None,
                   help="stop after this many shards (over all dumps) in this run (time-boxed jobs; "
                        "rerun to resume)")
    p.add_argument("--device", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose, quiet=True)
    if not args.no_progress:
        logging.getLogger("ndvq.progress").setLevel(logging.INFO)   # progress lines when stderr is a log file
    try:
        jobs = jobs_from_args(args.manifest, args.phonemes, args.out)
        kw = dict(bandwidth=args.bandwidth, n_q=args.n_q, utts_per_shard=args.utts_per_shard,
                  batch_seconds=args.batch_seconds, max_batch=args.max_batch, max_shards=args.max_shards,
                  progress=not args.no_progress, device=args.device, workers=args.workers)
        if len(jobs) == 1:
            summary = tokenize(jobs[0].manifests, args.model, jobs[0].out_dir, jobs[0].phonemes, **kw)
        else:
            summary = tokenize_jobs(jobs, args.model, **kw)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    empty = [d.get("out", args.out[0]) for d in summary.get("dumps", [summary]) if d.get("total_utterances") == 0]
    if empty:
        print(f"error: no utterance could be encoded into {', '.join(map(str, empty))} (every one skipped: "
              f"see its {SKIPPED_FILE})", file=sys.stderr)
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
