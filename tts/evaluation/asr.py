"""Offline speech recognition for intelligibility scores (WER), and the WER itself.

Two back ends, both without any download at run time:

* ``PocketSphinxASR``: pocketsphinx 5.x with the English acoustic model, dictionary and language
  model that ship inside its wheel. Given ``lm_texts`` it replaces the general LM by a trigram LM
  built from those sentences (``pocketsphinx.lm.ArpaBoLM``). That is a *constrained* setting: the
  recogniser knows which sentences can occur, so its WER is much lower than an open-vocabulary ASR
  would give; it still rejects noise and garbled speech, and what matters is
  that every row of a report (ground truth, codec resynthesis, TTS) is scored by the same decoder.
* ``TransformersASR``: a local Whisper or CTC (HuBERT / wav2vec2) checkpoint directory, loaded with
  ``local_files_only=True`` (for users who have such weights; none ship with the project).

``word_error_rate`` normalises both sides with the project's normaliser (``data_prep.text``), lower
cases them and drops punctuation before ``jiwer`` counts errors.
"""
from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol, Sequence

import numpy as np

from data_prep.audio import resample
from data_prep.text import normalize_text

log = logging.getLogger(__name__)

ASR_SAMPLE_RATE = 16000
_NON_WORD = re.compile(r"[^a-z0-9' ]+")


def normalize_for_wer(text: str) -> str:
    """The text as words for WER: project normaliser, lower case, no punctuation (apostrophes kept).

    ``normalize_for_wer("Dr. Smith paid $3!") == "doctor smith paid three dollars"``
    """
    t = normalize_text(text).lower().replace("-", " ").replace("\u2014", " ").replace("\u2026", " ")
    t = _NON_WORD.sub(" ", t)
    # quotes used as quotation marks, not as apostrophes inside a word
    words = [w.strip("'") for w in t.split()]
    return " ".join(w for w in words if w)


class ASR(Protocol):
    name: str
    constrained: bool

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str: ...


def _to_16k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"ASR input must be a mono [T] waveform, got shape {wav.shape}")
    if sample_rate != ASR_SAMPLE_RATE:
        wav = resample(wav, sample_rate, ASR_SAMPLE_RATE)
    return wav


class PocketSphinxASR:
    """pocketsphinx 5.x, bundled en-us model; optionally an LM built from the expected sentences.

    Each input is peak-normalised to 0.5 first, so a quiet output is not penalised for its level
    (the acoustic model's features are cepstral-mean normalised, but its energy feature is not).
    """

    def __init__(self, lm_texts: Optional[Sequence[str]] = None, lm_weight: Optional[float] = None):
        try:
            from pocketsphinx import Decoder
        except ImportError as e:  # pragma: no cover - the eval extra installs it
            raise ImportError("pocketsphinx is not installed: pip install 'ndvq[eval]'") from e
        kw: dict = dict(samprate=ASR_SAMPLE_RATE, loglevel="FATAL", cmn="batch")
        if lm_weight is not None:
            kw["lw"] = float(lm_weight)
        self.constrained = bool(lm_texts)
        self.oov: list[str] = []
        self._tmp = None
        if lm_texts:
            from pocketsphinx.lm import ArpaBoLM
            sentences = [s for s in (normalize_for_wer(t) for t in lm_texts) if s]
            if not sentences:
                raise ValueError("PocketSphinxASR: lm_texts has no words after normalisation")
            lm = ArpaBoLM(text="\n".join(sentences), add_start=True)
            lm.compute()
            self._tmp = tempfile.TemporaryDirectory(prefix="ndvq-asr-")
            lm_path = Path(self._tmp.name) / "test.lm"
            lm.write_file(str(lm_path))
            kw["lm"] = str(lm_path)
            self.decoder = Decoder(**kw)
            vocab = sorted({w for s in sentences for w in s.split()})
            # the bundled CMUdict has no pronunciation for these: the decoder can never output them
            self.oov = [w for w in vocab if self.decoder.lookup_word(w) is None]
            if self.oov:
                log.warning("pocketsphinx: %d of %d LM words have no pronunciation in the bundled "
                            "dictionary and can never be recognised: %s", len(self.oov), len(vocab),
                            " ".join(self.oov[:20]))
            # A dictionary of the LM's words only: building a decoder over the whole CMUdict takes
            # 10-20 s, over a few hundred words a fraction of a second (and a fresh decoder is built
            # for every utterance, see below).
            small = Path(self._tmp.name) / "lm_words.dict"
            small.write_text("".join(f"{w} {self.decoder.lookup_word(w)}\n" for w in vocab if w not in self.oov),
                             encoding="utf-8")
            kw["dict"] = str(small)
            self.name = (f"pocketsphinx {_version('pocketsphinx')} (bundled en-us acoustic model and "
                         f"dictionary; trigram LM built from the {len(sentences)} evaluated sentences)")
        else:
            self.decoder = Decoder(**kw)
            self.name = f"pocketsphinx {_version('pocketsphinx')} (bundled en-us model and general LM)"
        # A decoder carries state from one utterance to the next (measured: after a noise clip the
        # same recording was transcribed differently, even with the cepstral mean reset and noise
        # removal off), so with a test-text LM each utterance gets a fresh decoder and a score
        # depends on its audio only. (With the general LM a rebuild costs 10-20 s: one decoder.)
        self._kw = kw if self.constrained else None

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        w = _to_16k(wav, sample_rate)
        peak = float(np.abs(w).max()) if w.size else 0.0
        if peak > 0:
            w = w * (0.5 / peak)
        pcm = (np.clip(w, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        from pocketsphinx import Decoder
        dec = Decoder(**self._kw) if self._kw is not None else self.decoder
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        hyp = dec.hyp()
        return hyp.hypstr if hyp is not None else ""


class TransformersASR:
    """A local Whisper (seq2seq) or CTC (HuBERT, wav2vec2, ...) checkpoint directory."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", language: Optional[str] = "en"):
        import torch
        from transformers import AutoConfig, AutoModelForCTC, AutoProcessor

        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"--asr-model {model_dir}: not a transformers checkpoint directory "
                                    f"(no config.json); only local directories are used, nothing is downloaded")
        cfg = AutoConfig.from_pretrained(path, local_files_only=True)
        self.kind = "whisper" if cfg.model_type == "whisper" else "ctc"
        self.device = torch.device(device)
        self.language = language
        self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        if self.kind == "whisper":
            from transformers import WhisperForConditionalGeneration
            self.model = WhisperForConditionalGeneration.from_pretrained(path, local_files_only=True)
        else:
            self.model = AutoModelForCTC.from_pretrained(path, local_files_only=True)
        self.model.eval().to(self.device)
        self.constrained = False
        self.name = f"transformers {cfg.model_type} ({path.name})"

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        import torch
        w = _to_16k(wav, sample_rate)
        feats = self.processor(w, sampling_rate=ASR_SAMPLE_RATE, return_tensors="pt")
        with torch.inference_mode():
            if self.kind == "whisper":
                kw = {"language": self.language, "task": "transcribe"} if self.language else {}
                try:
                    ids = self.model.generate(feats.input_features.to(self.device), **kw)
                except (ValueError, TypeError):
                    # checkpoints without a multilingual generation config take no language argument
                    ids = self.model.generate(feats.input_features.to(self.device))
                text = self.processor.batch_decode(ids, skip_special_tokens=True)[0]
            else:
                inputs = {k: v.to(self.device) for k, v in feats.items()}
                logits = self.model(**inputs).logits  # [1, T, V]
                text = self.processor.batch_decode(logits.argmax(-1))[0]
        return text.strip()


def load_asr(model_dir: Optional[str | Path] = None, lm_texts: Optional[Sequence[str]] = None,
             device: str = "cpu") -> ASR:
    """``model_dir`` given: TransformersASR; otherwise pocketsphinx (with ``lm_texts`` as its LM)."""
    if model_dir:
        return TransformersASR(model_dir, device=device)
    return PocketSphinxASR(lm_texts=lm_texts)


@dataclass
class WERResult:
    wer: float                      # corpus WER: (S + D + I) / reference words
    substitutions: int
    deletions: int
    insertions: int
    ref_words: int
    per_item: list[float] = field(default_factory=list)  # each utterance's own WER


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> WERResult:
    """Corpus and per-utterance WER on normalised text (see ``normalize_for_wer``)."""
    import jiwer
    if len(refs) != len(hyps):
        raise ValueError(f"word_error_rate: {len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("word_error_rate: nothing to score")
    r = [normalize_for_wer(t) for t in refs]
    h = [normalize_for_wer(t) for t in hyps]
    empty = [i for i, t in enumerate(r) if not t]
    if empty:
        raise ValueError(f"word_error_rate: reference {empty[0]} has no words after normalisation")
    out = jiwer.process_words(r, h)
    per = [jiwer.process_words(a, b).wer for a, b in zip(r, h)]
    n = sum(len(t.split()) for t in r)
    return WERResult(wer=float(out.wer), substitutions=int(out.substitutions), deletions=int(out.deletions),
                     insertions=int(out.insertions), ref_words=n, per_item=[float(x) for x in per])


def _version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "?"
