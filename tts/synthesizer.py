"""The zero-shot synthesizer: text + a prompt recording (and its transcript) -> speech in the prompt's voice.

    from tts import Synthesizer
    syn = Synthesizer.from_pretrained(exp_dir="exp")           # exp/codec/model, exp/ar/model, exp/nar/model
    res = syn.synthesize("Hello there.", "prompt.wav", "the prompt's transcript", seed=1)
    res.audio, res.sample_rate, res.codes                     # [T] float32, Hz, [K, frames]

The command line (`python -m tts.synthesize`) is tts/synthesize.py.

How (VALL-E continuation): the prompt is encoded by the codec; the text is split at sentence
boundaries; for each sentence the AR continues [prompt-text + sentence phonemes ; prompt codebook-1
codes] until it samples <eos> (bounded by the prompt's speaking rate), the NAR fills codebooks
2..n_q from the phonemes (prompt text + sentence for a NAR trained in `prefix` prompt mode, the
sentence alone for `other_utterance`, as each saw in training), the whole prompt's codes and the
codebooks so far, the codec decodes, and the sentences are joined with short pauses. The output is scaled by
the prompt's RMS (the codec normalises its input), so it is as loud as the prompt.

Seeds: item i of `synthesize_batch(items, seed=s)` uses seed s + i, and sentence j of an item its
own generator derived from (seed, j): `synthesize(item_i, seed=s + i)` gives the same audio.
"""
from __future__ import annotations

import logging
import math
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import core.runtime  # noqa: E402,F401  (first: the OpenMP waiting policy, before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from data_prep.symbols import NON_PHONES  # noqa: E402

from .limits import (MAX_PROMPT_SECONDS, MAX_PROMPT_TEXT_CHARS, MAX_TEXT_CHARS_PER_WORD, MAX_TEXT_WORDS,  # noqa: E402
                     MIN_PROMPT_SECONDS, check_item_id, text_problem)
from .models import ARModel, NARModel  # noqa: E402
from .models.decoding import ARRequest, ar_generate, nar_generate, plan_durations  # noqa: E402
from .sampling import SamplingConfig, derive_seed, length_bounds, make_generator  # noqa: E402

logger = logging.getLogger(__name__)

SILENCE_DBFS = -60.0          # a prompt whose RMS is below this is "silent"
PAUSE_SECONDS = 0.3           # between sentences of a long text
MAX_SENTENCE_CHARS = 300      # longer sentences are split further at commas, then words

__all__ = ["Synthesizer", "SynthesisResult", "SynthesisError", "split_sentences", "MAX_TEXT_WORDS",
           "PAUSE_SECONDS", "MAX_SENTENCE_CHARS", "SILENCE_DBFS"]


PROMPT_PHONES_PER_SECOND = (4.0, 25.0)   # outside: the prompt's transcript and audio do not match (a warning)


class SynthesisError(ValueError):
    """Bad input to synthesis (empty text, unusable prompt, ...); the message says what and where."""


@dataclass
class SynthesisResult:
    audio: np.ndarray             # [T] float32 at sample_rate
    sample_rate: int
    codes: torch.Tensor           # [K, frames] int64, all sentences concatenated (pauses are audio only)
    seconds: float                # wall time of this item's synthesis (its share of a batch)
    text: str
    seed: int
    sentences: list[str] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)        # generated frames per sentence
    stops: list[str] = field(default_factory=list)         # "eos" | "max_length" per sentence

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


# ------------------------------------------------------------------------------------- text
def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Sentences of `text` (split after . ! ? ; followed by space and a capital letter); overlong ones at
    commas, then words. Give it *normalised* text (the synthesizer does): "Dr." is then "Doctor" and
    "p.m." "PM", so abbreviations do not end sentences; an ellipsis is a pause inside one."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?;])\s+(?=[\"'(]?[A-Z])", text.strip()) if p.strip()]
    out: list[str] = []
    for p in parts:
        if len(p) <= max_chars:
            out.append(p)
            continue
        cur = ""
        for piece in re.split(r"(?<=,)\s+", p):
            while len(piece) > max_chars:                     # no comma near: cut at a word boundary
                cut = piece.rfind(" ", 0, max_chars)
                cut = max_chars if cut <= 0 else cut
                if cur:
                    out.append(cur)
                    cur = ""
                out.append(piece[:cut].strip())
                piece = piece[cut:].strip()
            if cur and len(cur) + 1 + len(piece) > max_chars:
                out.append(cur)
                cur = ""
            cur = f"{cur} {piece}".strip()
        if cur:
            out.append(cur)
    return out


# ------------------------------------------------------------------------------------ model
@dataclass
class _Segment:
    item: int
    index: int                    # sentence number within the item
    text: str
    phonemes: torch.Tensor        # [L] prompt text + sentence
    n_text: int                   # sentence phoneme tokens (the last n_text of `phonemes`)
    generator: torch.Generator


@dataclass
class _Prompt:
    codes: torch.Tensor           # [K, P]
    scale: float
    ids: list[int]                # prompt text phoneme ids


class Synthesizer:
    """AR + NAR + codec + text front end (see module docstring). Build with `from_pretrained`."""

    def __init__(self, codec, ar: ARModel, nar: NARModel, frontend, device=None,
                 max_prompt_seconds: float = MAX_PROMPT_SECONDS, pause_seconds: float = PAUSE_SECONDS,
                 max_text_words: Optional[int] = MAX_TEXT_WORDS):
        if ar.cfg.codebook_size != nar.cfg.codebook_size or ar.cfg.codebook_size != codec.codebook_size:
            raise ValueError(f"codebook sizes differ: AR {ar.cfg.codebook_size}, NAR {nar.cfg.codebook_size}, "
                             f"codec {codec.codebook_size}")
        if nar.cfg.n_q > codec.n_q:
            raise ValueError(f"the NAR models {nar.cfg.n_q} codebooks but the codec has only {codec.n_q}")
        if nar.cfg.nar_alignment == "durations" and ar.cfg.ar_alignment != "durations":
            raise ValueError("the NAR reads planned durations (nar_alignment='durations') but the AR plans none "
                             f"(ar_alignment='{ar.cfg.ar_alignment}'): train both with durations")
        self.codec = codec
        self.device = torch.device(device) if device is not None else next(ar.parameters()).device
        self.ar = ar.to(self.device).eval()
        self.nar = nar.to(self.device).eval()
        self.frontend = frontend
        self.n_q = nar.cfg.n_q
        self.max_prompt_seconds = max_prompt_seconds
        self.pause_seconds = pause_seconds
        self.max_text_words = max_text_words
        self._sep = frontend.symbols.word_sep_id

    @property
    def sample_rate(self) -> int:
        return int(self.codec.sample_rate)

    @classmethod
    def from_pretrained(cls, codec=None, ar=None, nar=None, device=None, exp_dir=None,
                        precision: str = "fp32") -> "Synthesizer":
        """Load the codec and both models (directories or Hub ids; defaults exp_dir/{codec,ar,nar}/model;
        exp_dir defaults to ./exp when it holds a codec, else the recipe's egs/libritts/exp).

        Checks that both models were trained on this codec's codes (CodecMismatch naming both
        hashes) and with this text front end (FrontendMismatch naming the differing settings).
        """
        from codec.api import Codec, check_device
        from data_prep.frontend import TextFrontend

        from .checkpoint import check_codec, check_frontend, default_exp_dir, load_tts_model
        dev = check_device(device)
        exp = Path(exp_dir) if exp_dir is not None else default_exp_dir()
        codec_dir = _resolve(codec if codec is not None else exp / "codec" / "model", "codec")
        ar_dir = _resolve(ar if ar is not None else exp / "ar" / "model", "AR model")
        nar_dir = _resolve(nar if nar is not None else exp / "nar" / "model", "NAR model")
        cdc = Codec.from_pretrained(codec_dir, device=dev, precision=precision)
        loaded = {}
        for want, d in (("ar", ar_dir), ("nar", nar_dir)):
            lt = load_tts_model(d, device=dev)
            if lt.part != want:
                raise ValueError(f"{d} holds {'an AR' if lt.part == 'ar' else 'a NAR'} model; the "
                                 f"{want.upper()} model is expected here (--{want})")
            check_codec(lt.meta, cdc.checkpoint_sha256, f"{want.upper()} model {d}")
            loaded[want] = lt
        fe = TextFrontend.from_record(loaded["ar"].meta.get("frontend") or {}, f"AR model {ar_dir}")
        for want, d in (("ar", ar_dir), ("nar", nar_dir)):
            check_frontend(loaded[want].meta, fe, f"{want.upper()} model {d}")
        logger.info("loaded codec %s, AR %s, NAR %s", codec_dir, ar_dir, nar_dir)
        return cls(cdc, loaded["ar"].model, loaded["nar"].model, fe, device=dev)

    # -------------------------------------------------------------------------------- inputs
    def _sentences(self, text: str, where: str) -> list[str]:
        """Checked, normalised sentences of `text`: too long a text is refused; characters no English
        voice can read (other scripts, emoji) are dropped with a warning naming them."""
        from data_prep.text import unpronounceable
        bad = text_problem(text, "text", None)
        if bad:
            raise SynthesisError(f"{where}: {bad}")
        words, cap = len(text.split()), self.max_text_words
        if cap and (words > cap or len(text) > cap * MAX_TEXT_CHARS_PER_WORD):      # before phonemising
            has = f"{words} words" if words > cap else f"{len(text):,} characters"
            raise SynthesisError(f"{where}: text has {has}; the limit is {cap} words, {cap * MAX_TEXT_CHARS_PER_WORD:,} "
                                 f"characters (about {cap // 150} minutes of speech): split it into several items, "
                                 f"or raise the limit (--max-words)")
        clean, dropped = unpronounceable(text)
        if dropped:
            if not clean.strip():
                raise SynthesisError(f"{where}: nothing in the text can be read by the English front end "
                                     f"(not pronounceable: {' '.join(dropped)})")
            logger.warning("%s: not pronounceable by the English front end, left out: %s", where, " ".join(dropped))
        return split_sentences(self.frontend.normalize(clean))

    def _text_ids(self, text: str, what: str) -> list[int]:
        ids = self.frontend.text_to_ids(text)
        syms = self.frontend.symbols.decode(ids)
        if not any(s not in NON_PHONES for s in syms):
            raise SynthesisError(f"{what} {text!r} has no pronounceable symbols (phonemes: {' '.join(syms) or 'none'})")
        return ids

    def _min_frames(self, ids: torch.Tensor) -> torch.Tensor:
        """[L] int64: 1 for a pronounced phone (never skipped), 0 for stress, punctuation and separators."""
        syms = self.frontend.symbols.decode([int(i) for i in ids])
        return torch.tensor([int(s not in NON_PHONES) for s in syms], dtype=torch.long)

    def _prompt(self, wav, sr: Optional[int], prompt_text: str, where: str) -> _Prompt:
        bad = text_problem(prompt_text, "prompt_text", MAX_PROMPT_TEXT_CHARS)      # before any work
        if bad:
            raise SynthesisError(f"{where}: {bad}" + (": the AR needs the transcript of the prompt"
                                                      if bad.endswith("empty") else ""))
        if isinstance(wav, (str, os.PathLike)):
            from data_prep.audio import AudioError, load_audio
            try:
                wav, sr = load_audio(wav)
            except AudioError as e:
                raise SynthesisError(f"{where}: prompt: {e}") from e
        elif sr is None:
            raise SynthesisError(f"{where}: prompt_sr is required when prompt_wav is an array")
        w = np.asarray(wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else wav, dtype=np.float32)
        if w.ndim == 2:
            w = w.mean(axis=0)
        if w.ndim != 1 or w.size == 0:
            raise SynthesisError(f"{where}: prompt audio must be a non-empty [T] or [C, T] array, got shape {w.shape}")
        if not np.isfinite(w).all():
            raise SynthesisError(f"{where}: prompt audio contains NaN or infinite samples")
        dur = w.size / float(sr)
        if dur < MIN_PROMPT_SECONDS:
            raise SynthesisError(f"{where}: prompt is {dur:.2f} s long; it must be at least {MIN_PROMPT_SECONDS:.0f} s")
        if dur > self.max_prompt_seconds:
            raise SynthesisError(f"{where}: prompt is {dur:.1f} s long; the limit is {self.max_prompt_seconds:.0f} s "
                                 f"(cut it to a few seconds of clean speech)")
        level = 20 * math.log10(float(np.sqrt(np.mean(w.astype(np.float64) ** 2))) + 1e-12)
        if level < SILENCE_DBFS:
            raise SynthesisError(f"{where}: prompt is silent (RMS {level:.0f} dBFS < {SILENCE_DBFS:.0f} dBFS)")
        res = self.codec.encode(w, sample_rate=int(sr), n_q=self.n_q)          # resamples other rates
        ids = self._text_ids(prompt_text, f"{where}: prompt_text")
        _check_prompt_rate(int(self._min_frames(torch.tensor(ids)).sum()), dur, where)
        return _Prompt(res.item_codes(0).cpu(), float(res.scales[0, 0]), ids)

    def _nar_phonemes(self, seg: _Segment) -> torch.Tensor:
        """What the NAR saw in training: prefix mode -> the whole utterance's phonemes (prompt text +
        sentence); other_utterance mode -> the target's only (as tts/data.py builds the NAR's batches)."""
        return seg.phonemes if self.nar.cfg.prompt_mode == "prefix" else seg.phonemes[-seg.n_text:]

    # ---------------------------------------------------------------------------- synthesis
    def synthesize(self, text: str, prompt_wav, prompt_text: str, prompt_sr: Optional[int] = None,
                   sampling: Optional[SamplingConfig] = None, seed: Optional[int] = None) -> SynthesisResult:
        item = {"text": text, "prompt_wav": prompt_wav, "prompt_text": prompt_text, "prompt_sr": prompt_sr}
        return self.synthesize_batch([item], sampling=sampling, seed=seed, batch_size=1)[0]

    def synthesize_batch(self, items: Sequence[dict], sampling: Optional[SamplingConfig] = None,
                         seed: Optional[int] = None, batch_size: int = 8,
                         seeds: Optional[Sequence[int]] = None) -> list[SynthesisResult]:
        """items: {"text", "prompt_wav" (path or array), "prompt_text", "prompt_sr"?}.

        Item i uses seed + i (seed: this argument, else sampling.seed, else a random one), or
        seeds[i] when given. Sentences of all items are decoded together, batch_size at a time.
        """
        sc = sampling or SamplingConfig()
        if seeds is None:
            if seed is None:
                seed = sc.seed if sc.seed is not None else secrets.randbits(31)
            seeds = [seed + i for i in range(len(items))]
        elif len(seeds) != len(items):
            raise ValueError(f"synthesize_batch: {len(seeds)} seeds for {len(items)} items")
        t0 = time.perf_counter()
        prompts, segments, sentences = self._segments(items, seeds)
        codes, stops = self._decode(prompts, segments, sc, batch_size)
        return self._results(items, seeds, prompts, sentences, codes, stops, time.perf_counter() - t0)

    def _segments(self, items: Sequence[dict], seeds: Sequence[int]
                  ) -> tuple[list[_Prompt], list[_Segment], list[list[str]]]:
        """Every item's checked prompt and sentences; one segment per sentence with its own generator."""
        prompts, segments, sentences = [], [], []
        for i, it in enumerate(items):
            where = f"item {i}" if len(items) > 1 else "synthesize"
            sents = self._sentences(it.get("text"), where)
            prompt = self._prompt(it.get("prompt_wav"), it.get("prompt_sr"), it.get("prompt_text", ""), where)
            prompts.append(prompt)
            sentences.append(sents)
            for j, s in enumerate(sents):
                ids = self._text_ids(s, f"{where}: sentence {j + 1}")
                ph = torch.tensor(prompt.ids + [self._sep] + ids, dtype=torch.long)
                if ph.numel() > self.ar.cfg.max_text_tokens:
                    raise SynthesisError(f"{where}: sentence {j + 1} + prompt text give {ph.numel()} phonemes "
                                         f"(> {self.ar.cfg.max_text_tokens}); shorten the prompt text or the sentence")
                segments.append(_Segment(i, j, s, ph, len(ids), make_generator(derive_seed(seeds[i], j))))
        return prompts, segments, sentences

    def _ar_request(self, seg: _Segment, p: _Prompt, sc: SamplingConfig) -> ARRequest:
        """The AR's request for one segment: its length bounds (planned with durations, else from the
        prompt's speaking rate) within the model's max_frames."""
        dur = None
        if self.ar.cfg.ar_alignment == "durations":     # the length is planned, not sampled
            dur = plan_durations(self.ar, seg.phonemes, len(p.ids), p.codes.shape[1],
                                 self._min_frames(seg.phonemes), speed=sc.speed)
            lo = hi = int(dur[len(p.ids):].sum())
        else:
            lo, hi = length_bounds(seg.n_text, p.codes.shape[1], len(p.ids), self.codec.frame_rate, sc)
            hi = min(hi, self.ar.cfg.max_frames - p.codes.shape[1])
        if hi < 1 or hi > self.ar.cfg.max_frames - p.codes.shape[1]:
            raise SynthesisError(f"item {seg.item}: prompt of {p.codes.shape[1]} frames + {hi} new frames do not "
                                 f"fit the model's max_frames={self.ar.cfg.max_frames}")
        return ARRequest(seg.phonemes.to(self.device), p.codes[0].to(self.device), min(lo, hi - 1), hi,
                         seg.generator, None if dur is None else dur.to(self.device))

    def _decode(self, prompts: list[_Prompt], segments: list[_Segment], sc: SamplingConfig, batch_size: int
                ) -> tuple[dict[tuple[int, int], torch.Tensor], dict[tuple[int, int], str]]:
        """AR then NAR, batch_size segments at a time: ({(item, sentence): codes [K, T]}, {...: stop})."""
        from core.progress import progress
        codes: dict[tuple[int, int], torch.Tensor] = {}
        stops: dict[tuple[int, int], str] = {}
        bar = progress(total=len(segments), desc="synthesize", unit="sentence", enabled=len(segments) > batch_size,
                       leave=False)
        for s0 in range(0, len(segments), batch_size):
            chunk = segments[s0:s0 + batch_size]
            reqs = [self._ar_request(seg, prompts[seg.item], sc) for seg in chunk]
            ar_out = ar_generate(self.ar, reqs, sc)
            keep = [(seg, r, q) for seg, r, q in zip(chunk, ar_out, reqs) if r.codes.numel() > 0]
            if keep:
                # a durations-mode NAR reads the plan the AR spoke to (prompt + target frames per phoneme)
                dur = [q.durations for _, _, q in keep] if self.nar.cfg.nar_alignment == "durations" else None
                full = nar_generate(self.nar, [self._nar_phonemes(s).to(self.device) for s, _, _ in keep],
                                    [prompts[s.item].codes.to(self.device) for s, _, _ in keep],
                                    [r.codes.to(self.device) for _, r, _ in keep], dur)
                for (s, _, _), c in zip(keep, full):
                    codes[(s.item, s.index)] = c
            for seg, r in zip(chunk, ar_out):
                stops[(seg.item, seg.index)] = r.stop
            bar.update(len(chunk))
        bar.close()
        return codes, stops

    def _results(self, items: Sequence[dict], seeds: Sequence[int], prompts: list[_Prompt],
                 sentences: list[list[str]], codes: dict, stops: dict, wall: float) -> list[SynthesisResult]:
        """Each item's sentences decoded by the codec and joined with pauses; its share of the wall time."""
        results = []
        pause = np.zeros(int(self.pause_seconds * self.sample_rate), dtype=np.float32)
        total_frames = max(1, sum(c.shape[1] for c in codes.values()))
        for i, it in enumerate(items):
            t1 = time.perf_counter()
            pieces, cs, frames, stop = [], [], [], []
            for j in range(len(sentences[i])):
                c = codes.get((i, j))
                frames.append(0 if c is None else int(c.shape[1]))
                stop.append(stops[(i, j)])
                if c is None:
                    logger.warning("item %d sentence %d: the AR produced no frames", i, j + 1)
                    continue
                wav = self.codec.decode(c[None], scales=torch.tensor([[prompts[i].scale]]))[0, 0].numpy()
                if pieces:
                    pieces.append(pause)
                pieces.append(wav.astype(np.float32))
                cs.append(c)
            audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
            share = wall * sum(frames) / total_frames + (time.perf_counter() - t1)
            results.append(SynthesisResult(audio=audio, sample_rate=self.sample_rate,
                                           codes=torch.cat(cs, dim=1) if cs else torch.zeros(self.n_q, 0, dtype=torch.long),
                                           seconds=share, text=it["text"], seed=int(seeds[i]),
                                           sentences=sentences[i], frames=frames, stops=stop))
        return results


def _check_prompt_rate(phones: int, seconds: float, where: str) -> None:
    """Warn when the prompt's transcript cannot be what its audio says: the speaking rate, and with it the
    output's length, comes from their ratio (speech has about 8-18 phones a second)."""
    rate = phones / max(seconds, 1e-6)
    if not PROMPT_PHONES_PER_SECOND[0] <= rate <= PROMPT_PHONES_PER_SECOND[1]:
        logger.warning("%s: prompt_text has %d phones for %.1f s of prompt audio (%.1f a second; speech has about "
                       "8-18): does the transcript match the recording? The output's speaking rate follows it",
                       where, phones, seconds, rate)


def _resolve(path_or_id: Union[str, os.PathLike], what: str) -> Path:
    """A local directory, or a Hub id "owner/name" downloaded (config.json + model.safetensors only)."""
    from core.hub import resolve_model_dir
    return resolve_model_dir(path_or_id, what, hint=f"run the recipe's training stages (egs/libritts/run.sh), "
                                                    f"or pass --exp-dir (the recipe's exp) or --{what.split()[0].lower()}")
