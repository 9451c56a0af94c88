"""The phoneme symbol table: the fixed, versioned inventory of tokens and the symbol <-> id map.

The table (:data:`SYMBOLS`, version :data:`SYMBOLS_VERSION`) is espeak-ng's English phone inventory for
all English voices (en-us, en-gb, en-gb-scotland, en-gb-x-rp, en-029, en-us-nyc, ...), the stress marks
and punctuation, plus the specials ``<pad>=0 <bos>=1 <eos>=2 <unk>=3 _=4``; ids do not depend on the
corpus. :meth:`SymbolTable.encode` either raises :class:`UnknownSymbolError` naming the symbol and the
sentence, or maps it to ``<unk>`` with a warning. The leaf of the text front end: data_prep.espeak
(phonemisation), data_prep.frontend and data_prep.phonemes (the stage) all import it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

from core.io import atomic_path

log = logging.getLogger(__name__)

__all__ = ["SymbolTable", "UnknownSymbolError", "SYMBOLS", "SYMBOLS_VERSION", "SPECIALS", "WORD_SEP", "PAD", "BOS",
           "EOS", "UNK", "STRESS", "PUNCTUATION", "NON_PHONES", "ENGLISH_PHONES", "LENGTH_MARK"]

PAD, BOS, EOS, UNK, WORD_SEP = "<pad>", "<bos>", "<eos>", "<unk>", "_"
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, UNK, WORD_SEP)
STRESS: tuple[str, ...] = ("ˈ", "ˌ")
PUNCTUATION: tuple[str, ...] = tuple(';:,.!?¡¿—…"«»“”(){}[]')
# Tokens that are not pronounced phones: specials, stress marks and punctuation (rates, phone counts,
# the aligner's targets and the minimum duration of a planned phone all use this one set).
NON_PHONES: frozenset[str] = frozenset(SPECIALS) | frozenset(PUNCTUATION) | frozenset(STRESS)
# espeak-ng 1.51 English phones seen over ~40k words with every English voice, plus a few
# loan-word phones; single characters are included so that any phone can be segmented.
ENGLISH_PHONES: tuple[str, ...] = tuple("""
a aa aɪ aɪə aɪɚ aʊ aː b d dʒ e ei eə eɪ eʲ eː f h i iə iː j k l m n n̩ o oə oɪ oʊ oː oːɹ p r s st t tʃ
t̪ u uː v w x z æ ææ æʊ ð ŋ ɐ ɐɐ ɑ ɑə ɑː ɑːɹ ɒ ɔ ɔə ɔɪ ɔː ɔːɹ ə əl əu əɪ əɹ əʊ ɚ ɛ ɛə ɛɹ ɜ ɜː ɜːɹ ɡ ɪ
ɪə ɪɹ ɪʲ ɬ ɹ ɾ ʃ ʉ ʉɹ ʉː ʊ ʊə ʊɹ ʌ ʌɹ ʌʉ ʌʊ ʍ ʒ ʔ θ ᵻ ç ɣ ʁ ɲ ɑ̃ ɔ̃ ɛ̃ œ ø y ts ː ʲ ̩ ̪ ̃
""".split())
LENGTH_MARK = "ː"


class UnknownSymbolError(ValueError):
    """A token is not in the symbol table."""


def default_symbols() -> list[str]:
    """Specials, stress marks, punctuation, then the English phones, each once, in that order."""
    seen: dict[str, None] = {}
    for s in (*SPECIALS, *STRESS, *PUNCTUATION, *ENGLISH_PHONES):
        seen.setdefault(s, None)
    return list(seen)


# Version of the symbol list *and* of the IPA -> token rules of data_prep.espeak.tokenize_ipa.
# "1": the list as of the first release (appended per corpus); "2": frozen list (same first 144
# ids as "1"), Scottish length mark ':' read as 'ː' instead of the ':' punctuation token.
SYMBOLS_VERSION = "2"
SYMBOLS: tuple[str, ...] = tuple(default_symbols())


@dataclass
class SymbolTable:
    """Bidirectional map symbol <-> id; ids are positions in ``symbols`` (``<pad>`` is 0)."""
    symbols: list[str] = field(default_factory=default_symbols)

    def __post_init__(self) -> None:
        if list(self.symbols[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(f"a symbol table must start with the specials {SPECIALS}")
        self._ids = {s: i for i, s in enumerate(self.symbols)}
        if len(self._ids) != len(self.symbols):
            raise ValueError("duplicate symbols in the symbol table")

    pad_id = property(lambda self: self._ids[PAD])
    bos_id = property(lambda self: self._ids[BOS])
    eos_id = property(lambda self: self._ids[EOS])
    unk_id = property(lambda self: self._ids[UNK])
    word_sep_id = property(lambda self: self._ids[WORD_SEP])

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._ids

    def add(self, symbols: Iterable[str]) -> list[str]:
        """Append symbols not yet in the table (sorted, so the result is deterministic); return them."""
        new = sorted({s for s in symbols if s not in self._ids})
        for s in new:
            self._ids[s] = len(self.symbols)
            self.symbols.append(s)
        return new

    def encode(self, tokens: Sequence[str], on_unknown: Literal["error", "unk"] = "error",
               context: str | None = None) -> list[int]:
        """Map tokens to ids.

        ``on_unknown="error"`` raises :class:`UnknownSymbolError` naming the unknown symbols and the
        sentence (``context``, or the tokens joined); ``"unk"`` maps them to ``<unk>`` and logs a warning.
        """
        ids = [self._ids.get(t, -1) for t in tokens]
        if -1 in ids:
            unknown = sorted({t for t, i in zip(tokens, ids) if i == -1})
            where = context if context is not None else " ".join(tokens)
            msg = f"unknown phoneme symbol(s) {unknown} in sentence {where!r}"
            if on_unknown == "error":
                raise UnknownSymbolError(msg + " (use on_unknown='unk' to map them to <unk>)")
            if on_unknown != "unk":
                raise ValueError(f"on_unknown must be 'error' or 'unk', not {on_unknown!r}")
            log.warning("%s: mapped to %s", msg, UNK)
            ids = [self.unk_id if i == -1 else i for i in ids]
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map ids back to symbols (out-of-range ids become ``<unk>``)."""
        return [self.symbols[i] if 0 <= i < len(self.symbols) else UNK for i in ids]

    def save(self, path: str | os.PathLike) -> None:
        """Write ``symbol id`` lines atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text("".join(f"{s} {i}\n" for i, s in enumerate(self.symbols)), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SymbolTable":
        """Read a ``tokens.txt`` written by :meth:`save`."""
        pairs = []
        for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            sym, _, idx = line.rpartition(" ")
            if not sym or not idx.isdigit():
                raise ValueError(f"{path}:{lineno}: expected 'symbol id', got {line!r}")
            pairs.append((int(idx), sym))
        pairs.sort()
        if [i for i, _ in pairs] != list(range(len(pairs))):
            raise ValueError(f"{path}: ids are not contiguous from 0")
        return cls([s for _, s in pairs])
