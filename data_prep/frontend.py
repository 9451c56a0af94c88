"""The one text front end: text -> normalised text -> phonemes -> ids, for training and inference.

    fe = TextFrontend.default()                 # or TextFrontend.load("data/phonemes")
    fe.text_to_ids("Dr. Smith paid $5.")       # inference
    fe.tokens_to_ids(row["phonemes"])          # training, from the phonemes stage / code dump

Data prep (:func:`data_prep.phonemes.prepare_phonemes`), the code dump, TTS training, synthesis and
the demo all go through this object, so what a model is trained on and what it is fed at inference
come from the same code with the same settings:

* normalisation: :func:`data_prep.text.normalize_text` (version ``normalizer_version``);
* phonemisation: espeak-ng through phonemizer, voice/accent ``language`` (a named option, default
  ``en-us``; a per-call ``language=`` overrides it), ``with_stress``;
* tokenisation + ids: a fixed, versioned symbol table (:data:`data_prep.symbols.SYMBOLS`, version
  :data:`data_prep.symbols.SYMBOLS_VERSION`): ids never depend on the corpus. Symbols outside it become ``<unk>``
  with a warning, in :meth:`TextFrontend.phonemize` (so the phonemes stage writes ``<unk>`` too) and
  in :meth:`TextFrontend.encode`.

Saved as ``tokens.txt`` (``symbol id`` lines) + ``frontend.json`` (settings + fingerprint) in the
phonemes directory; the code dump header (``extra.frontend``) and TTS checkpoints carry
:meth:`TextFrontend.to_dict`, and :meth:`TextFrontend.check_compatible` raises
:class:`FrontendMismatch` naming each differing setting.

The fingerprint covers what changes the ids a text gets: language, with_stress, the symbols and
their version (which also versions the IPA -> token rules) and the normaliser version. The
espeak-ng and phonemizer versions are recorded, and a difference is logged as a warning, not an
error: refusing every model after an OS upgrade would be worse than a rare changed pronunciation.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from core.io import atomic_write_text
from data_prep.espeak import phonemize as _phonemize
from data_prep.symbols import SYMBOLS, SYMBOLS_VERSION, UNK, SymbolTable
from data_prep.text import NORMALIZER_VERSION, normalize_text

log = logging.getLogger(__name__)

__all__ = ["FrontendMismatch", "FrontendSettings", "TextFrontend", "SYMBOLS", "SYMBOLS_VERSION", "ENGLISH_ACCENTS",
           "TOKENS_FILE", "SETTINGS_FILE", "espeak_ng_version", "phonemizer_version"]

TOKENS_FILE = "tokens.txt"
SETTINGS_FILE = "frontend.json"


# espeak-ng voices whose phones the symbol table covers: the accents a front end may be set to
ENGLISH_ACCENTS: tuple[str, ...] = ("en-us", "en-gb", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
                                    "en-gb-x-gbclan", "en-gb-x-gbcwmd")


class FrontendMismatch(ValueError):
    """Two front ends (e.g. a model's and the data's) would give a text different ids."""


def _check_accent(language: str) -> None:
    if language not in ENGLISH_ACCENTS:
        raise ValueError(f"unknown accent {language!r}: the front end's symbol table covers the English espeak-ng "
                         f"voices {list(ENGLISH_ACCENTS)}")


@lru_cache(maxsize=1)
def espeak_ng_version() -> str:
    """The espeak-ng library version phonemizer uses (``"1.51"``), or ``"unavailable"``."""
    try:
        from phonemizer.backend import EspeakBackend

        return ".".join(str(v) for v in EspeakBackend.version())
    except Exception as e:  # espeak-ng missing: recorded, phonemize() will raise the real error
        log.debug("espeak-ng version unavailable: %s", e)
        return "unavailable"


@lru_cache(maxsize=1)
def phonemizer_version() -> str:
    try:
        import phonemizer

        return str(phonemizer.__version__)
    except Exception:
        return "unavailable"


@dataclass(frozen=True)
class FrontendSettings:
    """Everything that decides the ids a text gets (plus the tool versions, for the record)."""
    language: str = "en-us"
    with_stress: bool = True
    espeak_ng_version: str = ""
    phonemizer_version: str = ""
    symbols_version: str = SYMBOLS_VERSION
    normalizer_version: str = NORMALIZER_VERSION

    # settings whose difference is an error; the tool versions only warn (see the module docstring)
    STRICT = ("language", "with_stress", "symbols_version", "normalizer_version")

    def __post_init__(self) -> None:
        _check_accent(self.language)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FrontendSettings":
        """Read a dict written by :meth:`to_dict` (a ``fingerprint`` key beside it is ignored)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names - {"fingerprint"})
        if unknown:
            raise ValueError(f"unknown front-end setting(s) {unknown} (known: {sorted(names)})")
        return cls(**{k: v for k, v in d.items() if k in names})


class TextFrontend:
    """Text -> normalised text -> phoneme tokens -> ids (see the module docstring)."""

    def __init__(self, symbols: SymbolTable, settings: FrontendSettings):
        self.symbols = symbols
        self.settings = settings
        if settings.symbols_version == SYMBOLS_VERSION and tuple(symbols.symbols) != SYMBOLS:
            raise ValueError(f"symbol table differs from the built-in version {SYMBOLS_VERSION} table "
                             f"({len(symbols)} vs {len(SYMBOLS)} symbols): tokens.txt was edited?")

    # ------------------------------------------------------------------ creation / files
    @classmethod
    def default(cls, language: str = "en-us", with_stress: bool = True,
                normalizer_version: str = NORMALIZER_VERSION) -> "TextFrontend":
        """The current front end (fixed symbol table, this machine's espeak-ng/phonemizer); an older
        ``normalizer_version`` (a model's recorded one) normalises text as that version did."""
        return cls(SymbolTable(list(SYMBOLS)),
                   FrontendSettings(language=language, with_stress=with_stress, normalizer_version=normalizer_version,
                                    espeak_ng_version=espeak_ng_version(), phonemizer_version=phonemizer_version()))

    @classmethod
    def load(cls, dir: str | os.PathLike) -> "TextFrontend":
        """Read ``dir/tokens.txt`` + ``dir/frontend.json`` (both written by `save`)."""
        dir = Path(dir)
        tokens, settings_file = dir / TOKENS_FILE, dir / SETTINGS_FILE
        if not tokens.exists():
            raise FileNotFoundError(f"{tokens} not found: not a phonemes directory (run the phonemes stage)")
        table = SymbolTable.load(tokens)
        if not settings_file.exists():
            raise FileNotFoundError(f"{settings_file} not found: {dir} has a symbol table but not the front end's "
                                    f"settings; run the phonemes stage (python -m data_prep.phonemes) again")
        try:
            meta = json.loads(settings_file.read_text(encoding="utf-8"))
            settings = FrontendSettings.from_dict(meta["settings"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{settings_file}: not a front-end settings file ({e})") from e
        fe = cls(table, settings)
        if meta.get("fingerprint") not in (None, fe.fingerprint()):
            raise ValueError(f"{settings_file}: fingerprint {meta['fingerprint']} does not match "
                             f"{tokens} + settings ({fe.fingerprint()}): one of the two files was changed")
        return fe

    @classmethod
    def from_record(cls, record: dict, what: str = "the record") -> "TextFrontend":
        """This machine's front end for a model's / dump's :meth:`to_dict` record (its accent, options and
        normaliser version: a model of an older normaliser gets text normalised as it was trained),
        checked against it: raises :class:`FrontendMismatch` if the ids would differ."""
        d = record.get("settings", record)
        fe = cls.default(d.get("language", "en-us"), d.get("with_stress", True),
                         d.get("normalizer_version", NORMALIZER_VERSION))
        fe.check_compatible(record, what)
        return fe

    def save(self, dir: str | os.PathLike) -> None:
        """Write ``tokens.txt`` and ``frontend.json`` (each atomically)."""
        dir = Path(dir)
        self.symbols.save(dir / TOKENS_FILE)
        meta = {"settings": self.settings.to_dict(), "fingerprint": self.fingerprint(),
                "num_symbols": len(self.symbols)}
        atomic_write_text(dir / SETTINGS_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")

    def to_dict(self) -> dict[str, Any]:
        """Settings + fingerprint, flat: what the dump header and TTS checkpoints store."""
        return {**self.settings.to_dict(), "fingerprint": self.fingerprint()}

    # ------------------------------------------------------------------ identity
    def fingerprint(self) -> str:
        """Short sha256 over the settings that change ids and the symbol list."""
        s = self.settings
        payload = {k: getattr(s, k) for k in FrontendSettings.STRICT}
        payload["symbols"] = list(self.symbols.symbols)
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def check_compatible(self, other: "dict | TextFrontend", what: str) -> None:
        """Raise :class:`FrontendMismatch` if ``other`` (a front end, or its :meth:`to_dict` / saved
        ``{"settings", "fingerprint"}`` dict) would give texts other ids; ``what`` names it in messages
        (e.g. ``"model exp/ar/model"``). Tool-version differences are logged as warnings."""
        if isinstance(other, TextFrontend):
            o_settings, o_fp = other.settings, other.fingerprint()
        elif isinstance(other, dict):
            d = other.get("settings", other)
            o_settings, o_fp = FrontendSettings.from_dict(d), other.get("fingerprint")
        else:
            raise TypeError(f"check_compatible expects a TextFrontend or dict, not {type(other).__name__}")
        mine = self.settings
        diffs = [f"{k}: {getattr(o_settings, k)!r} != {getattr(mine, k)!r}"
                 for k in FrontendSettings.STRICT if getattr(o_settings, k) != getattr(mine, k)]
        if not diffs and o_fp is not None and o_fp != self.fingerprint():
            diffs.append(f"symbol table: fingerprint {o_fp} != {self.fingerprint()}")
        if diffs:
            raise FrontendMismatch(f"the front end of {what} differs from this one ({what} vs this): "
                                   + "; ".join(diffs))
        for k in ("espeak_ng_version", "phonemizer_version"):
            a, b = getattr(o_settings, k), getattr(mine, k)
            if a and b and a != b:
                log.warning("%s was made with %s %s, this front end uses %s: pronunciations may differ",
                            what, k.replace("_version", ""), a, b)

    # ------------------------------------------------------------------ the pipeline
    def normalize(self, text: str) -> str:
        return normalize_text(text, version=self.settings.normalizer_version)

    def phonemize(self, texts: Sequence[str], language: str | None = None, jobs: int = 1,
                  progress: bool = False) -> list[list[str]]:
        """Normalise then phonemise ``texts``; tokens outside the table become ``<unk>`` (one warning
        per call listing them)."""
        lang = language or self.settings.language
        _check_accent(lang)
        seqs = _phonemize([self.normalize(t) for t in texts], lang, jobs=jobs, progress=progress,
                          with_stress=self.settings.with_stress)
        unknown: Counter[str] = Counter()
        for seq in seqs:
            for i, t in enumerate(seq):
                if t not in self.symbols:
                    unknown[t] += 1
                    seq[i] = UNK
        if unknown:
            log.warning("symbols outside the front end's table (version %s) mapped to %s: %s",
                        self.settings.symbols_version, UNK, dict(unknown.most_common()))
        return seqs

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Tokens -> ids; unknown tokens -> ``<unk>`` with a warning (same in training and inference)."""
        return self.symbols.encode(list(tokens), on_unknown="unk")

    def text_to_ids(self, text: str, language: str | None = None) -> list[int]:
        """Inference: raw text -> ids (normalise, phonemise, encode)."""
        return self.encode(self.phonemize([text], language)[0])

    def tokens_to_ids(self, phoneme_string: str) -> list[int]:
        """Training: the phonemes stage's / code dump's space-separated ``phonemes`` field -> ids."""
        return self.encode(phoneme_string.split())

    def __repr__(self) -> str:
        return f"TextFrontend({self.settings}, {len(self.symbols)} symbols, fingerprint={self.fingerprint()})"
