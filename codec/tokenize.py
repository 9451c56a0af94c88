"""Tokenize a corpus: manifest(s) (+ phonemes) -> a code dump (codec.code_dump) for language models.

    python -m codec.tokenize --manifest data/manifests/train-clean-100.jsonl \
        --phonemes data/phonemes/train-clean-100.jsonl --model exp/codec/model \
        --out data/codes/train-clean-100 --bandwidth 6
    accelerate launch --multi_gpu --num_processes 2 -m codec.tokenize ...   (CPU: ACCELERATE_USE_CPU=true)

- Shards come from `plan_shards` (deterministic; each shard sorted longest first) and are stored in
  plan.json; rank r of W processes takes shards i % W == r; rank 0 merges the index after a barrier.
- Inside a shard (sorted longest first), utterances are submitted in groups of similar length
  (`--batch-seconds`, `--max-batch`) to `--workers` threads (default: torch's thread count, so 2 on
  a 2-core box, 1 per rank under a multi-rank launch) that each load and encode one utterance at a
  time with one intra-op thread; the next group is submitted before the previous one is written, so
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
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from data_prep.fileio import atomic_write_text, read_jsonl

from .code_dump import DumpWriter, make_header, plan_shards
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


def make_batches(ids: list[str], durations: dict[str, float], max_seconds: float,
                 max_items: int) -> list[list[str]]:
    """Consecutive (length-sorted) ids grouped so that items x longest <= max_seconds."""
    batches: list[list[str]] = []
    cur: list[str] = []
    longest = 0.0
    for u in ids:
        d = durations[u]
        if cur and (len(cur) >= max_items or max(longest, d) * (len(cur) + 1) > max_seconds):
            batches.append(cur)
            cur, longest = [], 0.0
        cur.append(u)
        longest = max(longest, d)
    if cur:
        batches.append(cur)
    return batches


def tokenize(manifests: Sequence[str], model: str, out_dir: str, phonemes: Sequence[str] = (),
             bandwidth: Optional[float] = None, n_q: Optional[int] = None, utts_per_shard: int = 500,
             batch_seconds: float = 120.0, max_batch: int = 16, max_shards: Optional[int] = None,
             progress: bool = True, device: Optional[str] = None, workers: Optional[int] = None) -> dict:
    """Run (this rank's part of) a tokenization job; returns a summary dict."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from accelerate import PartialState
    from tqdm import tqdm

    from data_prep.audio import AudioError, load_audio
    from .api import Codec

    # cpu=True when there is no GPU: with cpu=False accelerate would not join a multi-process CPU launch
    state = PartialState(cpu=(device == "cpu" or not torch.cuda.is_available()))
    rank, world = state.process_index, state.num_processes
    codec = Codec.from_pretrained(model, device=device or state.device)
    n_q = codec.resolve_n_q(bandwidth, n_q)
    # No global torch.set_grad_enabled(False) here: this function also runs inside other programs
    # (and the test suite), and Codec.encode already runs under inference_mode in every thread.

    rows = read_rows(manifests)
    by_id = {}
    for r in rows:
        if str(r["id"]) in by_id:
            raise ValueError(f"duplicate utterance id {r['id']!r} in manifests")
        by_id[str(r["id"])] = r
    phon = read_phonemes(phonemes)
    frontend = _frontend_of(phonemes)
    durations = {u: float(r["duration"]) for u, r in by_id.items()}
    plan = plan_shards(durations.items(), utts_per_shard=utts_per_shard)
    header = make_header(codec.checkpoint_sha256 or "unknown", codec.sample_rate, codec.frame_rate, n_q,
                         codec.codebook_size,
                         extra={"bandwidth_kbps": codec.kbps(n_q), "manifests": [str(m) for m in manifests],
                                "model": str(model), **({"frontend": frontend} if frontend else {})})
    out = Path(out_dir)
    dump = DumpWriter(out, header)
    dump.set_plan(plan)
    pending = dump.pending_shards(len(plan), rank, world)
    if max_shards is not None:
        pending = pending[:max_shards]
    bar = tqdm(total=sum(durations[u] for i in pending for u in plan[i]) / 3600.0, unit="h",
               desc=f"tokenize[{rank}]", position=rank, disable=not progress, bar_format=
               "{desc}: {percentage:3.0f}%|{bar}| {n:.3f}/{total:.3f} h audio [{elapsed}<{remaining}]")
    cpu = codec.device.type == "cpu"
    threads = torch.get_num_threads()
    workers = max(1, workers if workers is not None else (threads if cpu else 1))

    def encode_one(u: str):
        """(codes [n_q, T], scale, num_samples) of one utterance, or the load error."""
        try:
            wav, _ = load_audio(by_id[u]["path"], sample_rate=codec.sample_rate)
        except (AudioError, OSError, ValueError) as e:
            return e
        res = codec.encode(wav, codec.sample_rate, n_q=n_q)
        return res.item_codes(0).numpy(), float(res.scales[0, 0]), int(res.num_samples[0])

    t0 = time.perf_counter()
    audio_seconds, skipped_total, utts = 0.0, 0, 0
    # one intra-op thread per worker (set in each worker thread: OpenMP's setting is per thread)
    pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1 if workers > 1 else threads,))
    try:
        for i in pending:
            skipped: list[dict] = []
            with dump.shard(i) as writer:
                in_flight: deque = deque()
                batches = make_batches(plan[i], durations, batch_seconds, max_batch)
                for k in range(len(batches) + 1):
                    if k < len(batches):        # submit the next group before writing the previous one
                        in_flight.append((batches[k], [pool.submit(encode_one, u) for u in batches[k]]))
                    if len(in_flight) < 2 and k < len(batches):
                        continue
                    batch, futures = in_flight.popleft()
                    for u, fut in zip(batch, futures):
                        got = fut.result()
                        if isinstance(got, Exception):
                            logger.warning("skipping %s: %s", u, got)
                            skipped.append({"id": u, "path": by_id[u].get("path"), "error": str(got)})
                            continue
                        codes, scale, num_samples = got
                        r = by_id[u]
                        if phonemes and u not in phon:  # phonemes=null would be silently useless to a TTS
                            raise ValueError(f"utterance {u} has no phonemes in {list(phonemes)}: "
                                             f"rerun the phonemes stage for its manifest")
                        writer.add(u, codes, speaker=r.get("speaker"),
                                   text=r.get("text_norm", r.get("text")), phonemes=phon.get(u),
                                   duration=num_samples / codec.sample_rate, scale=scale, num_samples=num_samples)
                        audio_seconds += num_samples / codec.sample_rate
                        utts += 1
                    bar.update(sum(durations[u] for u in batch) / 3600.0)
                # written before the shard's index (the completion marker): a rerun rewrites both
                _write_skipped(out / f"shard-{i:05d}.skipped.jsonl", skipped)
            skipped_total += len(skipped)
    finally:
        pool.shutdown(cancel_futures=True)
        torch.set_num_threads(threads)     # the workers' setting also reaches process-wide pools (MKL)
    bar.close()
    wall = time.perf_counter() - t0
    summary = {"rank": rank, "world_size": world, "workers": workers, "shards_done": len(pending), "utterances": utts,
               "skipped": skipped_total, "audio_hours": audio_seconds / 3600.0, "wall_seconds": wall,
               "hours_per_hour": audio_seconds / wall if wall > 0 else None}
    finished = max_shards is None or len(dump.pending_shards(len(plan), rank, world)) == 0
    state.wait_for_everyone()
    if state.is_main_process and finished and not dump.pending_shards(len(plan), 0, 1):
        summary["total_utterances"] = dump.finalize(num_shards=len(plan))
        skipped_rows = []
        for k in range(len(plan)):
            p = out / f"shard-{k:05d}.skipped.jsonl"
            if p.exists():
                skipped_rows.extend(read_jsonl(p))
        _write_skipped(out / SKIPPED_FILE, skipped_rows)
        summary["total_skipped"] = len(skipped_rows)
        if skipped_rows:
            logger.warning("%d utterance(s) skipped (unreadable audio), listed in %s",
                           len(skipped_rows), out / SKIPPED_FILE)
    return summary


def _write_skipped(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m codec.tokenize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", action="append", required=True, help="JSONL manifest (repeatable)")
    p.add_argument("--phonemes", action="append", default=[], help="phoneme JSONL {id, phonemes} (repeatable)")
    p.add_argument("--model", required=True, help="codec directory or Hub id")
    p.add_argument("--out", required=True, help="dump directory")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bandwidth", type=float, default=None, help="kbps")
    g.add_argument("--n-q", type=int, default=None, help="codebooks (default: all)")
    p.add_argument("--utts-per-shard", type=int, default=500)
    p.add_argument("--batch-seconds", type=float, default=120.0,
                   help="audio seconds per submitted group (items x longest)")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=None,
                   help="encoding threads, one intra-op thread each (default: torch's thread count on CPU, 1 on GPU)")
    p.add_argument("--max-shards", type=int, default=None,
                   help="stop after this many shards in this run (time-boxed jobs; rerun to resume)")
    p.add_argument("--device", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = tokenize(args.manifest, args.model, args.out, args.phonemes, args.bandwidth, args.n_q,
                           args.utts_per_shard, args.batch_seconds, args.max_batch, args.max_shards,
                           progress=not args.no_progress, device=args.device, workers=args.workers)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
