"""Align every utterance of a code dump and write its per-token durations (docs/durations.md).

    python -m tts.align.durations --model exp/aligner/model --dump data/codes/train-clean-100 \
        --out data/durations/train-clean-100.jsonl [--manifest data/manifests/train-clean-100.jsonl]

For each utterance: log-mels framed like the codec (as many frames as the dump's `frames`), one
batched recognizer forward, CTC Viterbi alignment of its pronounced phones, then frames per token of
its full `phonemes` field (viterbi.token_durations). Written atomically: `<out>` (one JSON line per
aligned utterance, in dump order) and `<out minus .jsonl>.meta.json` (aligner sha256, frame rate,
counts and ids of the skipped utterances). Utterances that cannot be aligned (more phones than frames,
no phones, unreadable audio, audio whose frame count differs from the dump's by more than one) are
skipped and counted, never a crash.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from core.checkpoint import WEIGHTS_FILE
from core.io import atomic_write_text, sha256_file
from core.logs import setup_logging

from .corpus import Utterance, compute_features, dump_utterances, manifest_utterances
from .phones import PhoneTable, split_tokens
from .recognizer import load_recognizer
from .viterbi import DEFAULT_PAUSE_PENALTY, AlignmentError, forced_align_batch, token_durations

log = logging.getLogger("tts.align.durations")

FORMAT = "ndvq-durations"
VERSION = 1
DEFAULT_BLANK_PENALTY = 0.0
DEFAULT_SPLIT = "posterior"          # how blank runs between phones are shared (viterbi.token_durations)
SPLITS = ("posterior", "middle")

__all__ = ["FORMAT", "VERSION", "align_utterances", "write_durations", "read_durations", "meta_path", "main"]


def meta_path(out: str | Path) -> Path:
    """data/durations/x.jsonl -> data/durations/x.meta.json"""
    out = Path(out)
    return out.with_name(out.name[:-len(".jsonl")] + ".meta.json" if out.name.endswith(".jsonl")
                         else out.name + ".meta.json")


def align_utterances(model, feat_cfg, utts: Sequence[Utterance], blank_penalty: float = DEFAULT_BLANK_PENALTY,
                     workers: int = 2, max_frames_per_batch: int = 40_000, split: str = DEFAULT_SPLIT,
                     pause_penalty: float = DEFAULT_PAUSE_PENALTY) -> tuple[list[dict], dict[str, dict]]:
    """(rows {id, frames, durations, logp} in input order, {reason: {id: detail}} of the skipped)."""
    skipped: dict[str, dict] = {}

    def skip(reason: str, uid: str, detail: str = "") -> None:
        skipped.setdefault(reason, {})[uid] = detail

    fs, errors = compute_features(utts, feat_cfg, workers)
    for uid, err in errors.items():
        skip("frames_mismatch" if "code frames" in err else "unreadable_audio", uid, err)
    by_id = {u.id: u for u in utts}
    table = PhoneTable(model.config.phones)
    rows: dict[str, dict] = {}
    order = np.argsort(fs.lengths, kind="stable")
    batch: list[int] = []

    def flush(items: list[int]) -> None:
        if not items:
            return
        lengths = torch.tensor([int(fs.lengths[i]) for i in items])
        x = torch.zeros(len(items), fs.feats.shape[0], int(lengths.max()))
        for b, i in enumerate(items):
            x[b, :, :lengths[b]] = torch.from_numpy(fs.get(i))
        with torch.inference_mode():
            lp = model(x, lengths).numpy()
        tokens = [split_tokens(by_id[fs.ids[i]].phonemes) for i in items]
        b_of = {i: b for b, i in enumerate(items)}
        targets = []
        for i, tk in zip(items, tokens):
            try:
                targets.append(table.encode(tk))
            except KeyError as e:
                skip("unknown_phone", fs.ids[i], str(e))
                targets.append([])
        for i, tk, tg, al in zip(items, tokens, targets,
                                 forced_align_batch(lp, lengths.tolist(), targets, blank_penalty=blank_penalty)):
            uid, T = fs.ids[i], int(fs.lengths[i])
            if any(uid in d for d in skipped.values()):
                continue
            if not tg:
                skip("no_phones", uid)
            elif al is None:
                skip("infeasible", uid, f"{len(tg)} phones in {T} frames")
            else:
                try:
                    d = (token_durations(tk, al.frame_targets, lp[b_of[i], :T], tg, pause_penalty)
                         if split == "posterior" else token_durations(tk, al.frame_targets))
                    rows[uid] = {"id": uid, "frames": T, "durations": d, "logp": round(al.logp, 4)}
                except AlignmentError as e:
                    skip("no_phones", uid, str(e))

    longest = 0
    for i in order:
        n = int(fs.lengths[i])
        if batch and max(longest, n) * (len(batch) + 1) > max_frames_per_batch:
            flush(batch)
            batch, longest = [], 0
        batch.append(int(i))
        longest = max(longest, n)
    flush(batch)
    return [rows[u.id] for u in utts if u.id in rows], skipped


def write_durations(out: str | Path, rows: Sequence[dict], meta: dict) -> None:
    """The JSONL (one line per utterance) then its meta file, each atomically."""
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    atomic_write_text(meta_path(out), json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def read_durations(path: str | Path) -> dict[str, dict]:
    """id -> {"frames", "durations", "logp"} of a durations file (checks that durations sum to frames).

    FileNotFoundError for a missing file; ValueError naming the file and line for a malformed one."""
    out = {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"durations file {path} does not exist (the recipe writes it in stage 4: "
                                f"python -m tts.align.durations)")
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                ok = isinstance(r["id"], str) and all(isinstance(d, int) and d >= 0 for d in r["durations"])
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a durations line ({e})") from e
            if not ok:
                raise ValueError(f"{path}:{n}: durations must be non-negative integers under a string id")
            if sum(r["durations"]) != r["frames"]:
                raise ValueError(f"{path}:{n}: durations of {r['id']} sum to {sum(r['durations'])}, "
                                 f"not {r['frames']} frames")
            out[r["id"]] = r
    return out


def run(model_dir: str, out: str, dump: Optional[str] = None, manifests: Sequence[str] = (),
        phonemes: Optional[str] = None, blank_penalty: float = DEFAULT_BLANK_PENALTY, workers: int = 2,
        threads: Optional[int] = None, split: str = DEFAULT_SPLIT, pause_penalty: float = DEFAULT_PAUSE_PENALTY) -> dict:
    t0 = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    model, feat_cfg, record = load_recognizer(model_dir)
    missing: dict = {}
    header = None
    if dump:
        utts, dump_feats, missing = dump_utterances(dump, manifests)
        from codec.code_dump import CodeDump
        header = CodeDump(dump).header
        if (dump_feats.sample_rate, dump_feats.frame_rate) != (feat_cfg.sample_rate, feat_cfg.frame_rate):
            raise ValueError(f"the aligner {model_dir} frames audio at {feat_cfg.sample_rate} Hz / "
                             f"{feat_cfg.frame_rate} Hz, the dump {dump} at {dump_feats.sample_rate} Hz / "
                             f"{dump_feats.frame_rate} Hz: train an aligner on this codec's dump")
    elif len(manifests) == 1 and phonemes:
        utts = manifest_utterances(manifests[0], phonemes)
    else:
        raise ValueError("give --dump (and optionally --manifest), or one --manifest with --phonemes")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    src = dump or manifests[0]
    if not utts:
        why = ({k: v for k, v in missing.items() if v} or "the dump is empty") if dump else \
            f"the manifest is empty, or none of its ids has phonemes in {phonemes}"
        raise ValueError(f"{src}: no utterance to align ({why}); nothing written to {out}")
    rows, skipped = align_utterances(model, feat_cfg, utts, blank_penalty, workers, split=split,
                                     pause_penalty=pause_penalty)
    if not rows:
        reason, ids = next(iter(skipped.items()))
        uid, detail = next(iter(ids.items()))
        counts = {k: len(v) for k, v in skipped.items()}
        raise ValueError(f"{src}: none of its {len(utts)} utterances could be aligned ({counts}; first: {uid}: "
                         f"{reason} {detail}".rstrip() + f"); nothing written to {out}")
    seconds = time.perf_counter() - t0
    counts = {**{k: v for k, v in missing.items() if v}, **{k: len(v) for k, v in skipped.items()}}
    meta = {
        "format": FORMAT, "version": VERSION,
        "dump": str(dump) if dump else None,
        "codec_sha256": header["codec"]["checkpoint_sha256"] if header else None,
        "frame_rate": feat_cfg.frame_rate, "sample_rate": feat_cfg.sample_rate,
        "aligner_sha256": sha256_file(Path(model_dir) / WEIGHTS_FILE),
        "aligner_model": str(model_dir),
        "blank_penalty": blank_penalty, "split": split, "pause_penalty": pause_penalty,
        "utterances": len(utts) + sum(missing.values()), "aligned": len(rows),
        "skipped": counts, "skipped_ids": {k: sorted(v) for k, v in skipped.items()},
        "mean_logp": float(np.mean([r["logp"] for r in rows])) if rows else None,
        "seconds": round(seconds, 2),
    }
    write_durations(out, rows, meta)
    log.info("%s: %d of %d utterances aligned in %.1f s (skipped: %s), mean logp %.3f", out, len(rows),
             meta["utterances"], seconds, counts or "none", meta["mean_logp"] or float("nan"))
    return meta


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tts.align.durations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="aligner model directory (tts.align.train's <exp>/model)")
    p.add_argument("--dump", default=None, help="code dump directory")
    p.add_argument("--manifest", action="append", default=[],
                   help="manifest(s) with the audio paths (default: those named in the dump header)")
    p.add_argument("--phonemes", default=None, help="without --dump: the phonemes file of the one --manifest")
    p.add_argument("--out", required=True, help="output .jsonl (its .meta.json is written beside it)")
    p.add_argument("--blank-penalty", type=float, default=DEFAULT_BLANK_PENALTY,
                   help="subtracted from the blank's log-prob in the Viterbi search (0: plain CTC Viterbi)")
    p.add_argument("--split", choices=SPLITS, default=DEFAULT_SPLIT,
                   help="blank frames between two phones: 'posterior' (the recognizer's posteriors choose the "
                        "boundary and the pause) or 'middle' (half each; all of it to a pause token between)")
    p.add_argument("--pause-penalty", type=float, default=DEFAULT_PAUSE_PENALTY,
                   help="posterior split: a frame is a pause where the blank beats both phones by more than e^this")
    p.add_argument("--workers", type=int, default=2, help="feature threads")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = p.parse_args(argv)
    setup_logging()
    try:
        run(args.model, args.out, args.dump, args.manifest, args.phonemes, args.blank_penalty, args.workers,
            args.threads, args.split, args.pause_penalty)
    except (FileNotFoundError, ValueError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
