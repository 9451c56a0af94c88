"""Phonemisation: espeak-ng (through phonemizer) IPA, tokenized into the symbol table's phones.

Tokenization: espeak's IPA (``EspeakBackend('en-us', with_stress=True, preserve_punctuation=True)``)
split into one token per phone; stress marks ``ˈ ˌ`` are tokens of their own placed before the
stressed phone; each punctuation mark is a token; ``_`` separates words. Example::

    "Hello, world!" -> h ə l ˈ oʊ , _ w ˈ ɜː l d !

Texts are used as given: :class:`data_prep.frontend.TextFrontend` is the one entry point that
normalises first (and maps tokens outside the table to ``<unk>``).
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from typing import Sequence

from tqdm import tqdm

from data_prep.symbols import ENGLISH_PHONES, LENGTH_MARK, PUNCTUATION, STRESS, WORD_SEP

__all__ = ["phonemize", "tokenize_ipa"]

_ESPEAK_SEP = "|"
_PHONE_SET = frozenset(ENGLISH_PHONES)
_MAX_PHONE = max(map(len, ENGLISH_PHONES))
_BACKENDS: dict[str, object] = {}


def _segment(piece: str) -> list[str]:
    """Split one espeak phone string into known phones (greedy longest match)."""
    if piece in _PHONE_SET:
        return [piece]
    out, i = [], 0
    while i < len(piece):
        for n in range(min(_MAX_PHONE, len(piece) - i), 0, -1):
            if piece[i:i + n] in _PHONE_SET or n == 1:
                out.append(piece[i:i + n])
                i += n
                break
    return out


def _flush(buf: str, tokens: list[str]) -> str:
    if buf:
        tokens.extend(_segment(buf))
    return ""


def tokenize_ipa(ipa: str) -> list[str]:
    """Tokenize phonemizer output into symbols.

    Expected: phones each *followed* by ``|`` and words separated by spaces (phonemizer with
    ``strip=False``), e.g. ``n|ˈoː|t|: b|ˈa:|θ|,``. Text after a word's last ``|`` is punctuation;
    a ``:`` inside a phone (espeak's Scottish length mark, ``a:``) is the length mark ``ː``, never the
    ``:`` punctuation token. Input without the trailing ``|`` (``strip=True``) still works, except that
    a word-final ``:`` is then read as punctuation.
    """
    tokens: list[str] = []
    for word in ipa.split():
        if tokens and tokens[-1] != WORD_SEP:
            tokens.append(WORD_SEP)
        pieces = word.split(_ESPEAK_SEP)
        for k, piece in enumerate(pieces):
            in_phone = k < len(pieces) - 1  # followed by '|': a phone (maybe with leading punctuation)
            buf = ""
            for ch in piece:
                if ch == ":" and in_phone and buf:
                    buf += LENGTH_MARK
                elif ch in STRESS or ch in PUNCTUATION:
                    buf = _flush(buf, tokens)
                    tokens.append(ch)
                else:
                    buf += ch
            _flush(buf, tokens)
    while tokens and tokens[-1] == WORD_SEP:
        tokens.pop()
    return tokens


def _backend(language: str, with_stress: bool = True):
    """One espeak backend per (process, language, options), created on first use and reused."""
    key = (language, with_stress)
    if key not in _BACKENDS:
        from phonemizer.backend import EspeakBackend

        quiet = logging.getLogger("phonemizer.quiet")
        quiet.setLevel(logging.ERROR)  # silences "words count mismatch" warnings
        _BACKENDS[key] = EspeakBackend(language, with_stress=with_stress, preserve_punctuation=True,
                                       language_switch="remove-flags", logger=quiet)
    return _BACKENDS[key]


def _phonemize_batch(args: tuple[list[str], str, bool]) -> list[list[str]]:
    texts, language, with_stress = args
    from phonemizer.separator import Separator

    sep = Separator(phone=_ESPEAK_SEP, word=" ", syllable="")
    # strip=False keeps the '|' after every phone: it tells a phone's ':' from punctuation
    ipa = _backend(language, with_stress).phonemize([t.replace(_ESPEAK_SEP, " ") for t in texts],
                                                    separator=sep, strip=False)
    return [tokenize_ipa(s) for s in ipa]


def phonemize(texts: Sequence[str], language: str = "en-us", jobs: int = 1, batch_size: int = 256,
              progress: bool = False, with_stress: bool = True) -> list[list[str]]:
    """Phonemize texts into token lists (see the module docstring for the tokenization).

    The texts are used as given (no normalisation: :class:`data_prep.frontend.TextFrontend` is the
    one entry point that normalises first). Batched; with ``jobs > 1`` the batches run in worker
    processes, each reusing one backend.
    """
    texts = list(texts)
    batches = [(texts[i:i + batch_size], language, with_stress) for i in range(0, len(texts), batch_size)]
    out: list[list[str]] = []
    bar = tqdm(total=len(texts), desc="phonemize", unit="utt", disable=None if progress else True)
    if jobs > 1 and len(batches) > 1:
        with mp.get_context("spawn").Pool(min(jobs, len(batches))) as pool:
            for res in pool.imap(_phonemize_batch, batches):
                out.extend(res)
                bar.update(len(res))
    else:
        for b in batches:
            res = _phonemize_batch(b)
            out.extend(res)
            bar.update(len(res))
    bar.close()
    return out
