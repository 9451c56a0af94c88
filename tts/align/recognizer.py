"""The trained recognizer as a tool: model directories, greedy transcription, phoneme error rate.

    rec = PhonemeRecognizer.from_pretrained("exp/aligner/model")
    rec.transcribe(wav, sr)                 # -> ["ð", "ə", "d", "ɛ", ...] (pronounced phones, greedy CTC)
    rec.transcribe_batch([wav1, wav2], sr)  # one padded forward
    rec.durations(wav, sr, tokens, frames)  # frames per token of `tokens` over `frames` code frames (or None)
    phoneme_error_rate(refs, hyps)          # corpus PER: total edits / total reference phones

Model directory (written by `save_recognizer`, read by `load_recognizer`):
    config.json         {"format": "ndvq-aligner", "version": 1, "features": FeatureConfig,
                         "model": RecognizerConfig, "training": {...}, ...}
    model.safetensors   the CTCRecognizer state dict
Loading reads JSON and safetensors only: no code is executed.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.checkpoint import load_weights, read_model_config, save_model_dir
from core.config import from_dict, to_dict

from .features import FeatureConfig, fit_frames, log_mel
from .model import CTCRecognizer, RecognizerConfig
from .phones import BLANK, PhoneTable, split_tokens, is_phone

log = logging.getLogger(__name__)

FORMAT = "ndvq-aligner"
VERSION = 1

__all__ = ["PhonemeRecognizer", "save_recognizer", "load_recognizer", "greedy_decode", "edit_distance",
           "phoneme_error_rate", "pronounced", "FORMAT", "VERSION"]


def save_recognizer(model: CTCRecognizer, features: FeatureConfig, out_dir: str | os.PathLike,
                    **extra) -> Path:
    """Write config.json + model.safetensors into `out_dir` atomically (tmp dir + rename)."""
    record = {"format": FORMAT, "version": VERSION, "features": to_dict(features),
              "model": to_dict(model.config), **extra}
    return save_model_dir(model, record, out_dir)


def load_recognizer(model_dir: str | os.PathLike, device: str | torch.device = "cpu"
                    ) -> tuple[CTCRecognizer, FeatureConfig, dict]:
    """(model in eval mode, its feature config, the whole config.json record) of a model directory."""
    rec, file = read_model_config(model_dir, "aligner model")
    if rec.get("format") != FORMAT or rec.get("version") != VERSION:
        raise ValueError(f"{file}: format {rec.get('format')!r} version {rec.get('version')!r}, "
                         f"expected {FORMAT!r} version {VERSION}")
    feats = from_dict(FeatureConfig, rec["features"], f"{file}:features")
    # models written before `subsample` existed ran the trunk at the full frame rate
    cfg = from_dict(RecognizerConfig, {"subsample": 1, **rec["model"]}, f"{file}:model")
    model = load_weights(CTCRecognizer(cfg), model_dir, device)
    return model.to(device).eval(), feats, rec


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best label per frame, repeats merged, blanks dropped. [B, T, V], [B] -> label ids per item."""
    best = log_probs.argmax(-1).cpu().numpy()
    out = []
    for b, n in enumerate(lengths.tolist()):
        seq = best[b, :n]
        keep = np.ones(len(seq), bool)
        keep[1:] = seq[1:] != seq[:-1]
        out.append([int(x) for x in seq[keep] if x != BLANK])
    return out


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def pronounced(phonemes: str | Sequence[str]) -> list[str]:
    """The pronounced phones of a `phonemes` field (stress, punctuation, separators, specials dropped)."""
    return [t for t in split_tokens(phonemes) if is_phone(t)]


def phoneme_error_rate(refs: Sequence[Sequence[str] | str], hyps: Sequence[Sequence[str] | str]) -> float:
    """Corpus PER: sum of edit distances / sum of reference lengths, over phone token lists.

    A string is read as a `phonemes` field (space-separated; non-phones are dropped), a list as phones.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    edits = total = 0
    for r, h in zip(refs, hyps):
        r = pronounced(r) if isinstance(r, str) else list(r)
        h = pronounced(h) if isinstance(h, str) else list(h)
        edits += edit_distance(r, h)
        total += len(r)
    return edits / total if total else float("nan")


@dataclass
class PhonemeRecognizer:
    """A loaded recognizer: audio -> pronounced phones (greedy CTC). Trained on the training speakers
    of its corpus only (a domain-matched metric, not a general-purpose ASR)."""
    model: CTCRecognizer
    features: FeatureConfig
    record: dict
    device: str = "cpu"

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, device: str = "cpu") -> "PhonemeRecognizer":
        model, feats, rec = load_recognizer(model_dir, device)
        return cls(model, feats, rec, device)

    @property
    def table(self) -> PhoneTable:
        return PhoneTable(self.model.config.phones)

    def _prepare(self, wav, sr: int) -> np.ndarray:
        from data_prep.audio import resample
        w = wav.detach().cpu().float().numpy() if hasattr(wav, "detach") else np.asarray(wav, np.float32)
        w = w.reshape(-1) if w.ndim == 1 or w.shape[0] == 1 else w.mean(axis=0)   # [T] / [1, T] / [C, T]
        return resample(w.astype(np.float32), int(sr), self.features.sample_rate)

    @torch.inference_mode()
    def log_probs_batch(self, feats: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Features [M, T_i] -> (log-probs [B, T_max, V], lengths [B])."""
        lengths = torch.tensor([f.shape[1] for f in feats], dtype=torch.long)
        x = torch.zeros(len(feats), self.features.n_mels, int(lengths.max()) if len(feats) else 0)
        for i, f in enumerate(feats):
            x[i, :, :f.shape[1]] = torch.from_numpy(f)
        return self.model(x.to(self.device), lengths.to(self.device)).cpu(), lengths

    def transcribe_batch(self, wavs: Sequence, sr: int) -> list[list[str]]:
        """Mono waveforms (numpy/torch [T], [1, T] or [C, T]) at `sr` -> phones of each."""
        if not len(wavs):
            return []
        feats = [log_mel(self._prepare(w, sr), self.features) for w in wavs]
        lp, lengths = self.log_probs_batch(feats)
        table = self.table
        return [table.decode(ids) for ids in greedy_decode(lp, lengths)]

    def transcribe(self, wav, sr: int) -> list[str]:
        return self.transcribe_batch([wav], sr)[0]

    def durations(self, wav, sr: int, tokens: Sequence[str], frames: int) -> list[int] | None:
        """Frames per token of `tokens` (the front end's full token list) over the `frames` code frames of
        `wav`, by the forced alignment of recipe stage 4 (tts.align.durations); None when it cannot be aligned
        (no phone, more phones than frames, or audio of another length than `frames`)."""
        from .viterbi import AlignmentError, forced_align_batch, token_durations
        try:
            feats = fit_frames(log_mel(self._prepare(wav, sr), self.features), frames, tolerance=2)
            labels = self.table.encode(tokens)
        except (ValueError, KeyError):
            return None
        if not labels:
            return None
        lp, _ = self.log_probs_batch([feats])
        lp = lp[0].numpy()
        al = forced_align_batch(lp[None], [frames], [labels])[0]
        if al is None:
            return None
        try:
            return token_durations(list(tokens), al.frame_targets, lp[:frames], labels)    # stage 4's pause penalty
        except AlignmentError:
            return None
