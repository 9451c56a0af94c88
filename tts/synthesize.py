"""Zero-shot synthesis: text + a prompt recording (and its transcript) -> speech in the prompt's voice.

    from tts.synthesize import Synthesizer
    syn = Synthesizer.from_pretrained(exp_dir="exp")           # exp/codec/model, exp/ar/model, exp/nar/model
    res = syn.synthesize("Hello there.", "prompt.wav", "the prompt's transcript", seed=1)
    res.audio, res.sample_rate, res.codes                     # [T] float32, Hz, [K, frames]

    python -m tts.synthesize --text "Hello there." --prompt-wav p.wav --prompt-text "..." --out out.wav
    python -m tts.synthesize --list items.jsonl --out-dir out/   # {"id", "text", "prompt_wav", "prompt_text"}

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

import argparse
import json
import logging
import math
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import core.runtime  # noqa: E402,F401  (first: the OpenMP waiting policy, before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from data_prep.phonemes import NON_PHONES  # noqa: E402

from .models import ARModel, NARModel  # noqa: E402
from .models.decoding import ARRequest, ar_generate, nar_generate, plan_durations  # noqa: E402
from .sampling import SamplingConfig, derive_seed, length_bounds, make_generator  # noqa: E402

logger = logging.getLogger(__name__)

MIN_PROMPT_SECONDS = 1.0
MAX_PROMPT_SECONDS = 20.0
SILENCE_DBFS = -60.0          # a prompt whose RMS is below this is "silent"
PAUSE_SECONDS = 0.3           # between sentences of a long text
MAX_SENTENCE_CHARS = 300      # longer sentences are split further at commas, then words
MAX_TEXT_WORDS = 1000         # a longer text is refused (about 6 minutes of speech); --max-words to change
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")   # a --list item id, used as its file name


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


def load_frontend_for(meta: Optional[dict]):
    """The text front end matching a model's recorded settings (contract A's TextFrontend)."""
    from data_prep.frontend import TextFrontend
    from data_prep.text import NORMALIZER_VERSION
    settings = (meta or {}).get("frontend") or {}
    settings = settings.get("settings", settings)
    lang = settings.get("language", "en-us")
    with_stress = settings.get("with_stress", True)
    return TextFrontend.default(language=lang, with_stress=with_stress,
                                normalizer_version=settings.get("normalizer_version", NORMALIZER_VERSION))


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
    def from_pretrained(cls, codec=None, ar=None, nar=None, device=None, exp_dir="exp",
                        precision: str = "fp32") -> "Synthesizer":
        """Load the codec and both models (directories or Hub ids; defaults exp_dir/{codec,ar,nar}/model).

        Checks that both models were trained on this codec's codes (CodecMismatch naming both
        hashes) and with this text front end (FrontendMismatch naming the differing settings).
        """
        from codec.api import Codec
        from .checkpoint import check_codec, check_frontend, load_tts_model
        from codec.api import check_device
        dev = check_device(device)
        exp = Path(exp_dir)
        codec_dir = _resolve(codec if codec is not None else exp / "codec" / "model", "codec")
        ar_dir = _resolve(ar if ar is not None else exp / "ar" / "model", "AR model")
        nar_dir = _resolve(nar if nar is not None else exp / "nar" / "model", "NAR model")
        cdc = Codec.from_pretrained(codec_dir, device=dev, precision=precision)
        loaded = {}
        for want, d in (("ar", ar_dir), ("nar", nar_dir)):
            lt = load_tts_model(d, device=dev)
            if lt.part != want:
                raise ValueError(f"{d}: is a {lt.part.upper()} model, expected the {want.upper()} model here")
            check_codec(lt.meta, cdc.checkpoint_sha256, f"{want.upper()} model {d}")
            loaded[want] = lt
        fe = load_frontend_for(loaded["ar"].meta)
        for want, d in (("ar", ar_dir), ("nar", nar_dir)):
            check_frontend(loaded[want].meta, fe, f"{want.upper()} model {d}")
        logger.info("loaded codec %s, AR %s, NAR %s", codec_dir, ar_dir, nar_dir)
        return cls(cdc, loaded["ar"].model, loaded["nar"].model, fe, device=dev)

    # -------------------------------------------------------------------------------- inputs
    def _sentences(self, text: str, where: str) -> list[str]:
        """Checked, normalised sentences of `text`: too long a text is refused; characters no English
        voice can read (other scripts, emoji) are dropped with a warning naming them."""
        from data_prep.text import unpronounceable
        if not isinstance(text, str) or not text.strip():
            raise SynthesisError(f"{where}: text is empty")
        words = len(text.split())
        if self.max_text_words and words > self.max_text_words:
            raise SynthesisError(f"{where}: text has {words} words; the limit is {self.max_text_words} "
                                 f"(about {self.max_text_words // 150} minutes of speech): split it into several "
                                 f"items, or raise the limit (--max-words)")
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
        if not prompt_text or not prompt_text.strip():
            raise SynthesisError(f"{where}: prompt_text is empty: the AR needs the transcript of the prompt")
        res = self.codec.encode(w, sample_rate=int(sr), n_q=self.n_q)          # resamples other rates
        return _Prompt(res.item_codes(0).cpu(), float(res.scales[0, 0]), self._text_ids(prompt_text, f"{where}: prompt_text"))

    def _nar_phonemes(self, seg: _Segment) -> torch.Tensor:
        """What the NAR saw in training: prefix mode -> the whole utterance's phonemes (prompt text +
        sentence); other_utterance mode -> the target's only (contracts.md B)."""
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
                if ph.numel() > self.ar.cfg.max_phonemes:
                    raise SynthesisError(f"{where}: sentence {j + 1} + prompt text give {ph.numel()} phonemes "
                                         f"(> {self.ar.cfg.max_phonemes}); shorten the prompt text or the sentence")
                segments.append(_Segment(i, j, s, ph, len(ids), make_generator(derive_seed(seeds[i], j))))
        # AR then NAR, batch_size segments at a time (each segment has its own generator)
        fr = self.codec.frame_rate
        codes: dict[tuple[int, int], torch.Tensor] = {}
        stops: dict[tuple[int, int], str] = {}
        from core.progress import progress
        bar = progress(total=len(segments), desc="synthesize", unit="sentence", enabled=len(segments) > batch_size,
                       leave=False)
        for s0 in range(0, len(segments), batch_size):
            chunk = segments[s0:s0 + batch_size]
            reqs = []
            for seg in chunk:
                p = prompts[seg.item]
                dur = None
                if self.ar.cfg.ar_alignment == "durations":     # the length is planned, not sampled
                    dur = plan_durations(self.ar, seg.phonemes, len(p.ids), p.codes.shape[1],
                                         self._min_frames(seg.phonemes), speed=sc.speed)
                    lo = hi = int(dur[len(p.ids):].sum())
                else:
                    lo, hi = length_bounds(seg.n_text, p.codes.shape[1], len(p.ids), fr, sc)
                    hi = min(hi, self.ar.cfg.max_frames - p.codes.shape[1])
                if hi < 1 or hi > self.ar.cfg.max_frames - p.codes.shape[1]:
                    raise SynthesisError(f"item {seg.item}: prompt of {p.codes.shape[1]} frames + {hi} new frames do not "
                                         f"fit the model's max_frames={self.ar.cfg.max_frames}")
                reqs.append(ARRequest(seg.phonemes.to(self.device), p.codes[0].to(self.device), min(lo, hi - 1), hi,
                                      seg.generator, None if dur is None else dur.to(self.device)))
            ar_out = ar_generate(self.ar, reqs, sc)
            keep = [(seg, r) for seg, r in zip(chunk, ar_out) if r.codes.numel() > 0]
            if keep:
                full = nar_generate(self.nar, [self._nar_phonemes(s).to(self.device) for s, _ in keep],
                                    [prompts[s.item].codes.to(self.device) for s, _ in keep],
                                    [r.codes.to(self.device) for _, r in keep], sc,
                                    generators=[s.generator for s, _ in keep])
                for (s, _), c in zip(keep, full):
                    codes[(s.item, s.index)] = c
            for seg, r in zip(chunk, ar_out):
                stops[(seg.item, seg.index)] = r.stop
            bar.update(len(chunk))
        bar.close()
        wall = time.perf_counter() - t0
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


def _resolve(path_or_id: Union[str, os.PathLike], what: str) -> Path:
    """A local directory, or a Hub id "owner/name" downloaded (config.json + model.safetensors only)."""
    from codec.api import is_hub_id
    p = Path(path_or_id)
    if p.is_dir():
        return p
    s = str(path_or_id)
    if not is_hub_id(s):
        raise FileNotFoundError(f"{what}: {s} is not a directory (expected config.json + model.safetensors) "
                                f"nor a Hub id owner/name; run the recipe's training stages or pass --{what.split()[0].lower()}")
    from huggingface_hub import snapshot_download
    return Path(snapshot_download(s, allow_patterns=["config.json", "model.safetensors"]))


# ---------------------------------------------------------------------------------------- CLI
def _sampling_from_args(a) -> SamplingConfig:
    return SamplingConfig(temperature=a.temperature, top_k=a.top_k, top_p=a.top_p,
                          repetition_window=a.repetition_window, repetition_tau=a.repetition_tau,
                          max_length_factor=a.max_length_factor, speed=a.speed, seed=a.seed)


def check_output_file(path: Union[str, os.PathLike], what: str = "--out") -> Path:
    """An audio output path that can be written, checked before any work: not a folder, not under a
    file, a format soundfile writes as 16-bit PCM (wav, flac, aiff, ...)."""
    import soundfile as sf
    p = Path(path)
    if p.is_dir():
        raise SynthesisError(f"{what} {p} is a folder; give a file name such as {p / 'out.wav'}")
    _check_nearest_folder(p, p.parents, what)
    fmt = p.suffix.lstrip(".").upper()
    if not fmt or fmt not in sf.available_formats() or not sf.check_format(fmt, "PCM_16"):
        raise SynthesisError(f"{what} {p}: cannot write {p.suffix or 'a file without extension'} "
                             f"(16-bit PCM); use .wav or .flac")
    return p


def check_output_dir(path: Union[str, os.PathLike], what: str = "--out-dir") -> Path:
    p = Path(path)
    _check_nearest_folder(p, (p, *p.parents), what)
    return p


def _check_nearest_folder(p: Path, candidates, what: str) -> None:
    """The first existing path among candidates (p's folder chain) must be a writable folder."""
    for q in candidates:
        if q.exists():
            if not q.is_dir():
                raise SynthesisError(f"{what} {p}: {q} is a file, not a folder")
            if not os.access(q, os.W_OK | os.X_OK):
                raise SynthesisError(f"{what} {p}: the folder {q} is not writable")
            return


def read_list(list_path: Union[str, os.PathLike]) -> list[dict]:
    """Rows of a --list JSONL, checked before any model is loaded: JSON, the required keys, and an id
    that is a plain file name ([A-Za-z0-9][A-Za-z0-9._-]*, no folder parts) used once. A row without an
    id gets its line number. A relative prompt_wav that is not found from the current folder is looked up
    from the list's folder and the folders above it (tts.zeroshot_list writes recipe-relative paths)."""
    from core.io import path_from_file
    list_path = Path(list_path)
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SynthesisError(f"--list {list_path}: cannot read it ({e})") from e
    rows, seen = [], {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SynthesisError(f"{list_path}:{n}: not JSON ({e})") from e
        if not isinstance(row, dict):
            raise SynthesisError(f"{list_path}:{n}: a row must be a JSON object")
        missing = [k for k in ("text", "prompt_wav", "prompt_text") if k not in row]
        if missing:
            raise SynthesisError(f"{list_path}:{n}: missing {missing}")
        rid = row.setdefault("id", f"{n:05d}")
        if not isinstance(rid, str) or not ID_RE.fullmatch(rid):
            raise SynthesisError(f"{list_path}:{n}: id {rid!r} cannot be a file name: use letters, digits, "
                                 f"'.', '_' and '-' (starting with a letter or digit, at most 128)")
        if rid in seen:
            raise SynthesisError(f"{list_path}:{n}: id {rid!r} is used again (first on line {seen[rid]}); "
                                 f"each item writes <id>.wav")
        seen[rid] = n
        wav = Path(str(row["prompt_wav"]))
        if not wav.is_absolute() and not wav.exists():           # from the list's folder or one above it
            row["prompt_wav"] = path_from_file(wav, list_path.parent)
        rows.append(row)
    if not rows:
        raise SynthesisError(f"--list {list_path}: no items")
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    from data_prep.audio import save_audio
    from core.io import write_jsonl
    from core.logs import setup_logging
    ap = argparse.ArgumentParser(prog="python -m tts.synthesize", description="VALL-E zero-shot synthesis.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="text to speak (single mode)")
    src.add_argument("--list", help="JSONL of {id, text, prompt_wav, prompt_text[, prompt_sr]} (batch mode)")
    ap.add_argument("--prompt-wav", help="prompt recording (single mode)")
    ap.add_argument("--prompt-text", help="transcript of the prompt (single mode)")
    ap.add_argument("--out", default="out.wav", help="output wav (single mode)")
    ap.add_argument("--out-dir", help="output folder (batch mode): <id>.wav + results.jsonl")
    ap.add_argument("--exp-dir", default="exp", help="where the defaults live: EXP/{codec,ar,nar}/model")
    ap.add_argument("--codec", help="codec directory or Hub id (default EXP/codec/model)")
    ap.add_argument("--ar", help="AR model directory or Hub id (default EXP/ar/model)")
    ap.add_argument("--nar", help="NAR model directory or Hub id (default EXP/nar/model)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-words", type=int, default=MAX_TEXT_WORDS,
                    help=f"refuse a text longer than this (default {MAX_TEXT_WORDS}; 0: no limit)")
    d = SamplingConfig()
    ap.add_argument("--temperature", type=float, default=d.temperature)
    ap.add_argument("--top-k", type=int, default=d.top_k)
    ap.add_argument("--top-p", type=float, default=d.top_p)
    ap.add_argument("--repetition-window", type=int, default=d.repetition_window)
    ap.add_argument("--repetition-tau", type=float, default=d.repetition_tau)
    ap.add_argument("--max-length-factor", type=float, default=d.max_length_factor)
    ap.add_argument("--speed", type=float, default=d.speed,
                    help="speaking rate relative to the prompt's (an AR with durations; 2 = twice as fast)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    setup_logging(a.verbose)
    if a.text is not None and (not a.prompt_wav or a.prompt_text is None):
        ap.error("single mode needs --prompt-wav and --prompt-text")
    if a.list is not None and not a.out_dir:
        ap.error("batch mode (--list) needs --out-dir")
    try:
        # everything that can be checked without the models, before loading them
        from codec.api import check_device
        check_device(a.device)
        sc = _sampling_from_args(a)
        if a.text is not None:
            check_output_file(a.out)
            if not Path(a.prompt_wav).is_file():
                raise SynthesisError(f"--prompt-wav {a.prompt_wav}: no such file")
            rows = None
        else:
            check_output_dir(a.out_dir)
            rows = read_list(a.list)
        syn = Synthesizer.from_pretrained(codec=a.codec, ar=a.ar, nar=a.nar, device=a.device, exp_dir=a.exp_dir)
        syn.max_text_words = a.max_words or None
        if rows is None:
            res = syn.synthesize(a.text, a.prompt_wav, a.prompt_text, sampling=sc, seed=a.seed)
            save_audio(a.out, res.audio, res.sample_rate)
            logger.info("wrote %s: %.2f s of audio in %.2f s (seed %d, stops %s)", a.out, res.duration,
                        res.seconds, res.seed, res.stops)
            return 0
        return _batch_mode(syn, a, rows, sc, save_audio, write_jsonl)
    except (SynthesisError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _batch_mode(syn: Synthesizer, a, rows: list[dict], sc: SamplingConfig, save_audio, write_jsonl) -> int:
    from core.progress import progress
    list_path = Path(a.list)
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = a.seed if a.seed is not None else secrets.randbits(31)
    report: dict[int, dict] = {}
    bs = max(1, a.batch_size)
    for s0 in progress(range(0, len(rows), bs), desc="synthesize", unit="batch"):
        idx = list(range(s0, min(len(rows), s0 + bs)))
        try:
            # item i of the list uses seed base + i, whatever the batching
            res = syn.synthesize_batch([rows[i] for i in idx], sampling=sc, seeds=[base + i for i in idx],
                                       batch_size=bs)
        except SynthesisError:
            res = []
            for i in idx:           # one bad item: find it, keep the others
                try:
                    res.append(syn.synthesize_batch([rows[i]], sampling=sc, seeds=[base + i], batch_size=1)[0])
                except SynthesisError as e:
                    res.append(None)
                    report[i] = {"id": rows[i]["id"], "text": rows[i].get("text"),
                                 "error": f"{list_path} id {rows[i]['id']}: {e}"}
                    logger.error("%s", report[i]["error"])
        for i, r in zip(idx, res):
            if r is None:
                continue
            name = f"{rows[i]['id']}.wav"            # ids are checked file names (read_list)
            save_audio(out_dir / name, r.audio, r.sample_rate)
            report[i] = {"id": rows[i]["id"], "wav": name, "text": r.text, "seed": r.seed,
                         "audio_seconds": round(r.duration, 3), "wall_seconds": round(r.seconds, 3),
                         "frames": r.frames, "stops": r.stops}
            for k in ("speaker", "prompt_wav", "prompt_text", "ref_wav"):
                if rows[i].get(k) is not None:
                    report[i][k] = rows[i][k]
    write_jsonl(out_dir / "results.jsonl", [report[i] for i in range(len(rows))])
    failed = sum(1 for r in report.values() if "error" in r)
    logger.info("wrote %d of %d items to %s (%d failed)", len(rows) - failed, len(rows), out_dir, failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
