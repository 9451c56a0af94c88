"""tts.evaluate's per-item work: each row's audio of each item (read, or made from the recording) and what
one stack measures on it (transcript, phones, speaker embedding and similarity to the prompt, DNSMOS, the
codec metrics of the resynthesis, the F0 track and its pitch against the prompt and the recording).

`score_items` runs on a share of the items, in this process or in a worker process (tts.evaluate
splits the items over `--jobs` workers, each loading its own tools); everything it returns is plain
data, merged by item index. The row scores (WER, PER, means, intervals) are computed from the merged
records, never here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np

from data_prep.audio import save_audio
from data_prep.pitch import track_f0

from .inputs import EvalItem, load_wav
from .pitch import ALIGNED_ROWS, item_pitch
from .scoring import speech_seconds
from .tools import Tools, describe_setting, load_tools

log = logging.getLogger(__name__)

Row = Literal["ground_truth", "resynthesis", "gt_cb1_nar", "tts"]
ROWS: tuple[Row, ...] = ("ground_truth", "resynthesis", "gt_cb1_nar", "tts")
CODEC_METRICS = ("pesq", "stoi", "si_sdr", "mel")


@dataclass
class Scored:
    """What `score_items` measured on its items (lists in the order of `indices`)."""
    indices: list[int]
    recs: list[dict]                                   # per item: {row: {...}}, "ref_phones"
    prompt_emb: list[Optional[np.ndarray]]
    prompt_f0: list[Optional[np.ndarray]]
    emb: dict[str, list[Optional[np.ndarray]]] = field(default_factory=dict)    # row -> per item
    f0: dict[str, list[Optional[np.ndarray]]] = field(default_factory=dict)     # row -> per item
    rows: list[str] = field(default_factory=list)      # the rows this evaluation has
    setting: dict = field(default_factory=dict)
    train_emb: dict[str, np.ndarray] = field(default_factory=dict)              # training speaker -> [n, D]
    n_items: int = 0                                   # items of the whole evaluation (not only these)


def dnsmos_subset(n: int, k: Optional[int]) -> set[int]:
    """The items DNSMOS scores: `k` evenly spread over `n` (all when k is None or >= n). DNSMOS costs about
    0.45 s a clip (every clip is padded to 9 s windows) against about 0.1 s for ASR, speaker embedding
    and pitch together, so a cap keeps a 64-item evaluation near the time of a 16-item one."""
    if k is None or k >= n:
        return set(range(n))
    return {int(round(x)) for x in np.linspace(0, n - 1, max(0, k))}


def score_items(cfg, items: Sequence[EvalItem], indices: Sequence[int], out_dir: Optional[str | Path],
                train_picks: Optional[dict[str, list[str]]] = None, threads: int = 1) -> Scored:
    """Every row of the items `indices` of `items` (the ASR's language model sees all items' texts);
    `train_picks` ({speaker: paths}): training recordings to embed for the nearest-training-voice row."""
    import torch

    from core.progress import progress
    torch.set_num_threads(max(1, threads))
    texts = [it.text for it in items]
    tools = load_tools(cfg, texts)
    out = Path(out_dir) if out_dir else None
    idx = list(indices)
    recs = [{"id": items[i].id, "speaker": items[i].speaker, "text": items[i].text} for i in idx]
    if tools.recognizer is not None:
        from tts.align.recognizer import pronounced
        for rec, ph in zip(recs, tools.frontend.phonemize([texts[i] for i in idx])):
            rec["ref_phones"] = " ".join(pronounced(ph))
    sc = Scored(idx, recs, [], [], setting=describe_setting(cfg, tools, list(items)), n_items=len(items))
    if tools.use_dnsmos:
        sc.setting["dnsmos_items"] = len(dnsmos_subset(len(items), cfg.dnsmos_items))
    for i in progress(idx, desc="prompts", unit="utt", leave=False):
        a = load_wav(items[i].prompt_wav)
        sc.prompt_emb.append(tools.spk.embed(*a) if a is not None else None)
        sc.prompt_f0.append(track_f0(*a) if a is not None else None)
    for row in ROWS:
        if row == "resynthesis" and tools.codec is None or row == "gt_cb1_nar" and tools.nar_row is None:
            continue
        sc.rows.append(row)
        sc.emb[row], sc.f0[row] = [], []
        for k, i in enumerate(progress(idx, desc=row, unit="utt", leave=False)):
            rec = recs[k].setdefault(row, {})
            a, ref = _row_audio(tools, out, row, items[i], rec)
            _score_item(tools, cfg, sc, row, k, a, ref, rec)
    if train_picks:
        from .voices import training_voices

        def embed(path: str):
            a = load_wav(path)
            return tools.spk.embed(*a) if a is not None else None
        sc.train_emb = training_voices(train_picks, embed)
    return sc


def _row_audio(tools: Tools, out: Optional[Path], row: Row, it: EvalItem, rec: dict):
    """(audio, the recording) of one item in one row: read (ground truth, TTS) or made from the recording
    (resynthesis, the NAR row; written to out/<row>/<id>.wav)."""
    if row == "ground_truth":
        return load_wav(it.ref_wav), None
    if row == "tts":
        return load_wav(it.out_wav), None
    codec, ref, a = tools.codec, load_wav(it.ref_wav), None
    if ref is not None and row == "resynthesis":
        res = codec.encode(ref[0], ref[1], n_q=tools.n_q)
        a = (codec.decode(res)[0, 0].numpy(), codec.sample_rate)
    elif ref is not None:
        a, why = tools.nar_row.audio(it, ref)
        if a is None:
            log.warning("%s: %s row left out for this item: %s", it.id, row, why)
    if a is not None and out is not None:
        path = out / row / f"{it.id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_audio(path, a[0], a[1])
        rec["wav"] = str(path)
    return a, ref


def _score_item(tools: Tools, cfg, sc: Scored, row: Row, k: int, a, ref, rec: dict) -> None:
    """Transcript, phones, similarity to the prompt, DNSMOS, (resynthesis) codec metrics and pitch of one item."""
    from .speaker import cosine
    if a is None:
        rec["missing"] = True
        sc.emb[row].append(None)
        sc.f0[row].append(None)
        return
    wav, sr = a
    rec["seconds"] = len(wav) / sr
    rec["speech_seconds"] = speech_seconds(wav, sr)
    rec["hyp"] = tools.asr.transcribe(wav, sr)
    if tools.recognizer is not None:
        rec["phones"] = " ".join(tools.recognizer.transcribe(wav, sr))
    emb = tools.spk.embed(wav, sr)
    sc.emb[row].append(emb)
    if sc.prompt_emb[k] is not None:
        rec["sim"] = cosine(sc.prompt_emb[k], emb)
    if tools.use_dnsmos and sc.indices[k] in dnsmos_subset(sc.n_items, cfg.dnsmos_items):
        rec["dnsmos"] = tools.metrics.dnsmos(wav, sr)
    if row == "resynthesis" and cfg.codec_metrics and tools.metrics is not None:
        rec["codec_metrics"] = tools.metrics.score_pair(ref[0], _resample_to(wav, sr, ref[1]), ref[1],
                                                        metrics=CODEC_METRICS)
    f0 = track_f0(wav, sr)
    sc.f0[row].append(f0)
    gt = sc.f0.get("ground_truth")
    rec["pitch"] = item_pitch(f0, sc.prompt_f0[k], gt[k] if row in ALIGNED_ROWS and gt else None)


def _resample_to(wav: np.ndarray, sr: int, target: int) -> np.ndarray:
    from data_prep.audio import resample
    return wav if sr == target else resample(wav, sr, target)
