"""Phonemes (espeak-ng through phonemizer) and the phoneme symbol table.

    python -m data_prep.phonemes --manifests data/manifests --out data/phonemes \
        --subsets train-clean-100 dev-clean test-clean --jobs 4

Tokenization: espeak's IPA (``EspeakBackend('en-us', with_stress=True, preserve_punctuation=True)``)
split into one token per phone; stress marks ``ˈ ˌ`` are tokens of their own placed before the
stressed phone; each punctuation mark is a token; ``_`` separates words. Example::

    "Hello, world!" -> h ə l ˈ oʊ , _ w ˈ ɜː l d !

Written: ``<out>/<subset>.jsonl`` with lines ``{"id": ..., "phonemes": "h ə l ˈ oʊ , _ w ..."}``
(same order as the manifest; plus ``"language"`` for a speaker phonemised with its own accent) and,
through :class:`data_prep.frontend.TextFrontend` (which normalises every text first, so LibriTTS's
``text_norm`` and inference input go through the same normaliser), ``<out>/tokens.txt`` (``symbol id``
per line) + ``<out>/frontend.json`` (settings + fingerprint). A subset whose output already covers
its manifest with the same front end is skipped (``--force`` redoes it); every write is atomic.

The symbol table is fixed and versioned (:data:`data_prep.frontend.SYMBOLS_VERSION`): espeak's English
phone inventory for all English voices (en-us, en-gb, en-gb-scotland, en-gb-x-rp, en-029, en-us-nyc,
...), the stress marks and punctuation, plus the specials ``<pad>=0 <bos>=1 <eos>=2 <unk>=3 _=4``; ids do
not depend on the corpus. A phone outside it becomes ``<unk>`` (with a warning) in the front end, the
same in training and inference. :meth:`SymbolTable.encode` on its own either raises
:class:`UnknownSymbolError` naming the symbol and the sentence, or maps to ``<unk>`` with a warning.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

from tqdm import tqdm

from core.io import atomic_path, iter_jsonl, write_jsonl
from core.logs import setup_logging

log = logging.getLogger(__name__)

__all__ = ["SymbolTable", "UnknownSymbolError", "phonemize", "tokenize_ipa", "train_bpe", "SPECIALS",
           "WORD_SEP", "PAD", "BOS", "EOS", "UNK", "NON_PHONES"]

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

_ESPEAK_SEP = "|"
LENGTH_MARK = "ː"


class UnknownSymbolError(ValueError):
    """A token is not in the symbol table."""


def _default_symbols() -> list[str]:
    seen: dict[str, None] = {}
    for s in (*SPECIALS, *STRESS, *PUNCTUATION, *ENGLISH_PHONES):
        seen.setdefault(s, None)
    return list(seen)


@dataclass
class SymbolTable:
    """Bidirectional map symbol <-> id; ids are positions in ``symbols`` (``<pad>`` is 0)."""
    symbols: list[str] = field(default_factory=_default_symbols)

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


# ----------------------------------------------------------------------------- phonemization
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


# ----------------------------------------------------------------------------- BPE (optional)
def train_bpe(texts: Iterable[str], out_prefix: str | os.PathLike, vocab_size: int) -> Path:
    """Train a sentencepiece BPE model on ``texts``; returns ``<out_prefix>.model``."""
    import sentencepiece as spm

    Path(out_prefix).parent.mkdir(parents=True, exist_ok=True)
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=iter(list(texts)), model_prefix=str(out_prefix),
                                       vocab_size=vocab_size, model_type="bpe", character_coverage=1.0,
                                       minloglevel=2)
    except RuntimeError as e:
        raise ValueError(f"BPE training with vocab_size={vocab_size} failed: {e} "
                         f"(the text may be too small for this vocabulary; try a smaller --bpe-vocab)") from e
    return Path(f"{out_prefix}.model")


# ----------------------------------------------------------------------------- stage
def _is_complete(out_file: Path, ids: list[str], languages: list[str]) -> bool:
    if not out_file.exists():
        return False
    try:
        rows = list(iter_jsonl(out_file))
        return [r["id"] for r in rows] == ids and [r.get("language") for r in rows] == languages
    except (ValueError, KeyError):
        return False


def read_speaker_languages(path: str | os.PathLike) -> dict[str, str]:
    """A ``speaker<TAB>language`` TSV (the mini corpus's ``accents.tsv``) -> {speaker: espeak voice}."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path}:{lineno}: expected 'speaker<TAB>language', got {line!r}")
        out[parts[0]] = parts[1]
    return out


def prepare_phonemes(manifest_dir: str | os.PathLike, out_dir: str | os.PathLike, subsets: list[str],
                     jobs: int = 1, language: str = "en-us", force: bool = False,
                     bpe_vocab: int = 0, speaker_languages: dict[str, str] | None = None):
    """Phonemize each subset's manifest through the front end; write ``tokens.txt`` + ``frontend.json``.

    ``language`` is the front end's (default) accent; ``speaker_languages`` optionally gives a speaker's
    own accent (its utterances are phonemised with it and the row records ``"language"``).
    Returns the :class:`data_prep.frontend.TextFrontend` used.
    """
    from data_prep.frontend import TextFrontend
    from data_prep.libritts import read_manifest

    manifest_dir, out_dir = Path(manifest_dir), Path(out_dir)
    fe = TextFrontend.default(language)
    try:  # another front end made the existing files: redo them all
        stale = TextFrontend.load(out_dir).fingerprint() != fe.fingerprint()
    except (FileNotFoundError, ValueError):
        stale = True
    if stale and not force and any((out_dir / f"{s}.jsonl").exists() for s in subsets):
        log.info("%s was made by another front end (or none recorded): phonemizing again", out_dir)
    speaker_languages = speaker_languages or {}
    all_text: list[str] = []
    for subset in subsets:
        rows = read_manifest(manifest_dir / f"{subset}.jsonl")
        all_text.extend(r["text_norm"] for r in rows)
        out_file = out_dir / f"{subset}.jsonl"
        ids = [r["id"] for r in rows]
        langs = [speaker_languages.get(str(r["speaker"])) for r in rows]  # None: the front end's default
        if not force and not stale and _is_complete(out_file, ids, langs):
            log.info("%s: phonemes already complete in %s, skipping", subset, out_file)
            continue
        seqs: list[list[str]] = [[] for _ in rows]
        for lang in sorted(set(langs), key=str):
            idx = [i for i, l in enumerate(langs) if l == lang]
            for i, seq in zip(idx, fe.phonemize([rows[i]["text_norm"] for i in idx], lang, jobs=jobs, progress=True)):
                seqs[i] = seq
        out_rows = []
        for i, s, l in zip(ids, seqs, langs):
            out_rows.append({"id": i, "phonemes": " ".join(s), **({"language": l} if l else {})})
        write_jsonl(out_file, out_rows)
        log.info("%s: %d utterances phonemized -> %s", subset, len(seqs), out_file)
        empty = [i for i, s in zip(ids, seqs) if not s]
        if empty:
            log.warning("%s: %d utterances have no phonemes (e.g. %s)", subset, len(empty), empty[:3])
    fe.save(out_dir)
    log.info("front end %s -> %s", fe, out_dir)
    if bpe_vocab:
        model = train_bpe(all_text, out_dir / f"bpe_{bpe_vocab}", bpe_vocab)
        log.info("BPE model -> %s", model)
    return fe


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifests", required=True, help="directory with <subset>.jsonl manifests")
    p.add_argument("--out", required=True, help="output directory for <subset>.jsonl and tokens.txt")
    p.add_argument("--subsets", nargs="+", required=True)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--language", default="en-us", help="espeak voice/accent of the front end (its default)")
    p.add_argument("--speaker-languages", default=None,
                   help="TSV 'speaker<TAB>language': phonemise these speakers with their own accent")
    p.add_argument("--bpe-vocab", type=int, default=0, help="also train a BPE model of this size (0: no)")
    p.add_argument("--force", action="store_true", help="redo subsets that are already complete")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    spk_lang = read_speaker_languages(args.speaker_languages) if args.speaker_languages else None
    prepare_phonemes(args.manifests, args.out, args.subsets, args.jobs, args.language, args.force, args.bpe_vocab,
                     spk_lang)


if __name__ == "__main__":
    main()
