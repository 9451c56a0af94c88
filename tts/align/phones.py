"""The recognizer's targets: the pronounced phones of a `phonemes` string, and their ids.

A dump's `phonemes` field holds the TTS front end's tokens: phones, stress marks (placed before the
stressed phone), punctuation, the word separator `_` and specials. The recognizer predicts only the
pronounced phones (`data_prep.symbols.NON_PHONES` is what does not count, the same set the TTS data filter
uses). Phone ids are fixed by the front end's versioned symbol table, not by the corpus: id 0 is the
CTC blank, id k >= 1 is `phones[k - 1]`.
"""
from __future__ import annotations

from typing import Sequence

from data_prep.symbols import NON_PHONES, SYMBOLS

BLANK = 0

__all__ = ["BLANK", "NON_PHONES", "default_phones", "is_phone", "split_tokens", "PhoneTable"]


def default_phones() -> tuple[str, ...]:
    """Every pronounced symbol of the front end's fixed table, in table order."""
    return tuple(s for s in SYMBOLS if s not in NON_PHONES)


def is_phone(token: str) -> bool:
    return token not in NON_PHONES


def split_tokens(phonemes: str | Sequence[str]) -> list[str]:
    """The token list of a `phonemes` field (space-separated string) or of a list of tokens."""
    return phonemes.split() if isinstance(phonemes, str) else list(phonemes)


class PhoneTable:
    """phone symbol <-> CTC label id (blank = 0, phones 1..n)."""

    def __init__(self, phones: Sequence[str]) -> None:
        self.phones = tuple(phones)
        self._ids = {p: i + 1 for i, p in enumerate(self.phones)}
        if len(self._ids) != len(self.phones):
            raise ValueError("duplicate phones in the phone table")
        bad = [p for p in self.phones if not is_phone(p)]
        if bad:
            raise ValueError(f"non-phone symbols in the phone table: {bad}")

    @property
    def num_labels(self) -> int:
        """Output classes of the recognizer: phones + blank."""
        return len(self.phones) + 1

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Label ids of the pronounced phones of `tokens` (non-phones dropped). A phone outside the table
        raises KeyError naming it (the table is the front end's: it cannot happen with its output)."""
        out = []
        for t in tokens:
            if is_phone(t):
                if t not in self._ids:
                    raise KeyError(f"phone {t!r} is not in the recognizer's phone table")
                out.append(self._ids[t])
        return out

    def decode(self, ids: Sequence[int]) -> list[str]:
        return [self.phones[i - 1] for i in ids if i != BLANK]
