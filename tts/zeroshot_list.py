"""The zero-shot test list (recipe stage 7): cross-utterance prompts for unseen speakers.

For each test utterance (the *target*: its text is synthesised, its audio is the ground truth), the
prompt is ANOTHER utterance of the same speaker, about 3 s long, as in the paper's cross-utterance
setting. The prompt's transcript must match its audio exactly (the AR is conditioned on the
prompt's phonemes followed by the target's), and there is no forced aligner we can trust on these
voices (pocketsphinx's alignment mode failed on most mini-corpus utterances), so a prompt is a whole
utterance whose duration is in ``[prompt_min, prompt_max]`` (default 2-4.5 s; the one nearest
``prompt_target`` seconds, ties broken by a seeded shuffle so targets do not all share one prompt),
with leading and trailing silence cut. A speaker with no utterance in that window gets the shortest
other utterance longer than ``prompt_min`` (``prompt_in_window: false`` in its row).

The list is JSONL, one row per item, so every tool scores the same set::

    {"id", "speaker", "text", "ref_wav", "ref_duration",
     "prompt_id", "prompt_wav", "prompt_text", "prompt_duration", "prompt_in_window",
     "out_wav"}

``prompt_wav`` is the cut prompt written under ``<out>/prompts/``; ``out_wav`` is where the TTS
output is expected (``<out>/wavs/<id>.wav``, what ``python -m tts.synthesize --list LIST
--out-dir <out>/wavs`` writes). Paths are relative to the folder the list was made from (the recipe
directory) when they lie in it, else absolute; readers find them from the list's folder upwards.

    python -m tts.zeroshot_list --manifest data/manifests/test-clean.jsonl \
        --train-manifest data/manifests/train-clean-100.jsonl --out exp/synth --max-per-speaker 2
"""
from __future__ import annotations

import argparse
import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from data_prep.audio import load_audio, save_audio
from core.io import path_for_file, read_jsonl, write_jsonl
from core.logs import setup_logging
from tts.limits import check_item_id

log = logging.getLogger(__name__)

PATH_KEYS = ("ref_wav", "prompt_src", "prompt_wav", "out_wav")


@dataclass
class ListConfig:
    prompt_target: float = 3.0      # seconds: the paper's 3 s enrolment
    prompt_min: float = 2.0
    prompt_max: float = 4.5
    min_duration: float = 3.0       # targets shorter than this are left out (paper: 4-10 s on LibriSpeech)
    max_duration: float = 12.0
    max_per_speaker: Optional[int] = None   # bound synthesis time: N targets per speaker
    max_items: Optional[int] = None
    trim_db: float = 40.0           # silence below peak - trim_db dB is cut from a prompt's ends
    seed: int = 0


def trim_silence(wav: np.ndarray, sr: int, top_db: float = 40.0, margin_s: float = 0.05) -> np.ndarray:
    """Cut leading/trailing frames quieter than peak - top_db (20 ms frames), keeping a margin."""
    hop = max(1, int(0.02 * sr))
    n = len(wav) // hop
    if n == 0:
        return wav
    frames = wav[: n * hop].reshape(n, hop)
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(db > db.max() - top_db)
    if loud.size == 0:
        return wav
    margin = int(margin_s * sr)
    start = max(0, loud[0] * hop - margin)
    end = min(len(wav), (loud[-1] + 1) * hop + margin)
    return wav[start:end]


def _text(row: dict) -> str:
    for key in ("text_norm", "text", "text_orig"):
        if row.get(key):
            return str(row[key])
    raise ValueError(f"manifest row {row.get('id')}: no text field (text_norm/text)")


def choose_prompt(target: dict, same_speaker: list[dict], cfg: ListConfig,
                  rng: random.Random) -> tuple[dict, bool]:
    """(prompt row, in_window) for a target among its speaker's other utterances."""
    others = [r for r in same_speaker if r["id"] != target["id"]]
    if not others:
        raise ValueError(f"speaker {target.get('speaker')}: {target['id']} is the speaker's only "
                         f"utterance, so there is no other utterance to prompt with")
    inside = [r for r in others if cfg.prompt_min <= float(r["duration"]) <= cfg.prompt_max]
    if inside:
        rng.shuffle(inside)
        # nearest to the target length; the shuffle spreads ties (and near-ties within 0.25 s)
        best = min(inside, key=lambda r: round(abs(float(r["duration"]) - cfg.prompt_target) * 4))
        return best, True
    longer = [r for r in others if float(r["duration"]) >= cfg.prompt_min]
    pool = longer or others
    return min(pool, key=lambda r: float(r["duration"])), False


def build_list(rows: list[dict], out_dir: str | Path, cfg: ListConfig = ListConfig(),
               train_speakers: Optional[set[str]] = None) -> list[dict]:
    """Choose targets and prompts, write the cut prompts, return the list rows (not yet written)."""
    out = Path(out_dir).resolve()
    by_spk: dict[str, list[dict]] = defaultdict(list)
    for n, r in enumerate(rows, 1):
        for key in ("id", "path", "duration", "speaker"):
            if key not in r:
                raise ValueError(f"manifest row {n} ({r.get('id', '?')}): missing field '{key}'")
        # manifest ids are data: they name <out>/prompts/<id>.prompt.wav and wavs/<id>.wav, never a place
        check_item_id(r["id"], f"manifest row {n}")
        by_spk[str(r["speaker"])].append(r)
    if train_speakers is not None:
        seen = sorted(set(by_spk) & train_speakers)
        if seen:
            log.warning("%d test speaker(s) also occur in training, so they are not unseen: %s",
                        len(seen), " ".join(seen[:10]))
    rng = random.Random(cfg.seed)
    items: list[dict] = []
    for spk in sorted(by_spk):
        utts = sorted(by_spk[spk], key=lambda r: r["id"])
        targets = [r for r in utts if cfg.min_duration <= float(r["duration"]) <= cfg.max_duration]
        if cfg.max_per_speaker is not None and len(targets) > cfg.max_per_speaker:
            targets = sorted(rng.sample(targets, cfg.max_per_speaker), key=lambda r: r["id"])
        for t in targets:
            if len(utts) < 2:
                log.warning("speaker %s has one utterance; %s is left out (no other utterance to "
                            "prompt with)", spk, t["id"])
                continue
            p, in_window = choose_prompt(t, utts, cfg, rng)
            items.append({"id": t["id"], "speaker": spk, "text": _text(t),
                          "ref_wav": str(Path(t["path"]).resolve()), "ref_duration": float(t["duration"]),
                          "prompt_id": p["id"], "prompt_src": str(Path(p["path"]).resolve()),
                          "prompt_text": _text(p), "prompt_in_window": in_window,
                          "out_wav": str(out / "wavs" / f"{t['id']}.wav")})
    if cfg.max_items is not None:
        items = items[: cfg.max_items]
    if not items:
        raise ValueError(f"no test utterance qualifies (durations {cfg.min_duration}-{cfg.max_duration} s "
                         f"among {len(rows)} rows, each needing another utterance of its speaker)")
    prompts = out / "prompts"
    prompts.mkdir(parents=True, exist_ok=True)
    for it in items:
        wav, sr = load_audio(it["prompt_src"])
        wav = trim_silence(wav, sr, cfg.trim_db)
        path = prompts / f"{it['id']}.prompt.wav"
        save_audio(path, wav, sr)
        it["prompt_wav"] = str(path)
        it["prompt_sr"] = int(sr)
        it["prompt_duration"] = round(len(wav) / sr, 4)
    n_out = sum(not it["prompt_in_window"] for it in items)
    if n_out:
        log.warning("%d of %d prompts fall outside %.1f-%.1f s (their speaker had no utterance in "
                    "that window)", n_out, len(items), cfg.prompt_min, cfg.prompt_max)
    return items


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tts.zeroshot_list", description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True, help="test manifest JSONL (id, path, duration, speaker, text_norm)")
    ap.add_argument("--train-manifest", default=None, help="training manifest: warn if a test speaker is not unseen")
    ap.add_argument("--out", required=True, help="output directory: list.jsonl, prompts/")
    d = ListConfig()
    for name in ("prompt_target", "prompt_min", "prompt_max", "min_duration", "max_duration", "trim_db"):
        ap.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    ap.add_argument("--max-per-speaker", type=int, default=None)
    ap.add_argument("--max-items", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    setup_logging(a.verbose)
    cfg = ListConfig(prompt_target=a.prompt_target, prompt_min=a.prompt_min, prompt_max=a.prompt_max,
                     min_duration=a.min_duration, max_duration=a.max_duration, trim_db=a.trim_db,
                     max_per_speaker=a.max_per_speaker, max_items=a.max_items, seed=a.seed)
    from data_prep.libritts import read_manifest
    try:
        rows = read_manifest(a.manifest)
        train = {str(r["speaker"]) for r in read_jsonl(a.train_manifest)} if a.train_manifest else None
        items = build_list(rows, a.out, cfg, train)
    except (OSError, ValueError) as e:
        log.error("%s", e)
        return 2
    path = Path(a.out) / "list.jsonl"
    # paths relative to the recipe directory (the current folder) when under it: a moved checkout reads
    # its own files; readers resolve them from the list's folder upwards (core.io.path_from_file)
    write_jsonl(path, [{k: path_for_file(v, a.out) if k in PATH_KEYS else v for k, v in it.items()} for it in items])
    log.info("zero-shot list: %d items, %d speakers, prompts %.1f-%.1f s -> %s", len(items),
             len({it["speaker"] for it in items}), min(it["prompt_duration"] for it in items),
             max(it["prompt_duration"] for it in items), path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
