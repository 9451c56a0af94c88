"""Text normalisation for inference-time input (LibriTTS's ``text_norm`` is already normalised).

``normalize_text("Dr. Smith paid $3.50 on May 2nd, 1999 - 20% off!")``
-> ``"Doctor Smith paid three dollars fifty cents on May second, nineteen ninety-nine - twenty percent off!"``

Covered: unicode quotes/dashes/ellipsis, common abbreviations (Mr., Mrs., Dr., St., ...),
integers, decimals, ordinals (1st, 22nd), years (1900-2099 read as years when alone),
money ($, £, €), percentages, and whitespace. Anything else is left as written.
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text", "number_to_words", "ordinal_to_words", "NORMALIZER_VERSION"]

# Bump whenever normalize_text's output changes for some input (it is part of the front-end fingerprint).
NORMALIZER_VERSION = "1"

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}

_ABBREVIATIONS = {
    "mr": "Mister", "mrs": "Missus", "ms": "Miss", "dr": "Doctor", "st": "Saint", "prof": "Professor",
    "jr": "Junior", "sr": "Senior", "capt": "Captain", "gen": "General", "col": "Colonel", "lt": "Lieutenant",
    "sgt": "Sergeant", "rev": "Reverend", "hon": "Honorable", "gov": "Governor", "mt": "Mount",
    "vs": "versus", "etc": "et cetera", "no": "number", "co": "Company", "ft": "Fort",
}
_ABBR_RE = re.compile(r"\b(" + "|".join(sorted(_ABBREVIATIONS, key=len, reverse=True)) + r")\.(?=\s|$)", re.I)
_NO_RE = re.compile(r"\bno\.(?=\s*\d)", re.I)
_PUNCT_MAP = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                            "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
                            "\u2013": "-", "\u2014": " - ", "\u2212": "-", "\u2026": "...", "\u00a0": " "})
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}


def number_to_words(n: int) -> str:
    """Cardinal number in words: ``number_to_words(2045) == "two thousand forty-five"``."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + (" " + number_to_words(rest) if rest else "")
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return number_to_words(head) + " " + name + (" " + number_to_words(rest) if rest else "")
    raise AssertionError("unreachable")


def ordinal_to_words(n: int) -> str:
    """Ordinal in words: ``ordinal_to_words(22) == "twenty-second"``."""
    words = number_to_words(n)
    head, sep, last = words.rpartition("-") if "-" in words.split(" ")[-1] else words.rpartition(" ")
    if last in _ORD_IRREGULAR:
        last = _ORD_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def _year_to_words(n: int) -> str:
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_to_words(hi) + " hundred"
    if n // 1000 == 2 and hi == 20 and lo < 10:
        return number_to_words(n)
    return number_to_words(hi) + " " + ("oh " + _ONES[lo] if lo < 10 else number_to_words(lo))


def _money(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    whole = int(m.group(2).replace(",", ""))
    cents = int((m.group(3) or "0").ljust(2, "0")[:2])
    parts = []
    if whole or not cents:
        parts.append(f"{number_to_words(whole)} {one if whole == 1 else many}")
    if cents:
        parts.append(f"{number_to_words(cents)} {sub_one if cents == 1 else sub_many}")
    return " ".join(parts)


def _decimal(m: re.Match) -> str:
    whole, frac = m.group(1).replace(",", ""), m.group(2)
    return number_to_words(int(whole)) + " point " + " ".join(_ONES[int(d)] for d in frac)


def _integer(m: re.Match) -> str:
    text = m.group(0)
    n = int(text.replace(",", ""))
    if "," not in text and len(text) == 4 and 1100 <= n <= 2099:
        return _year_to_words(n)
    return number_to_words(n)


def normalize_text(text: str) -> str:
    """Normalise free text for the phonemizer (see the module docstring for what is covered)."""
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT_MAP)
    text = _NO_RE.sub("number", text)
    text = _ABBR_RE.sub(lambda m: _ABBREVIATIONS[m.group(1).lower()], text)
    text = re.sub(r"([$£€])\s?(\d[\d,]*)(?:\.(\d+))?", _money, text)
    text = re.sub(r"(\d[\d,]*(?:\.\d+)?)\s?%", lambda m: m.group(1) + " percent", text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: ordinal_to_words(int(m.group(1))), text)
    text = re.sub(r"\b(\d[\d,]*)\.(\d+)\b", _decimal, text)
    text = re.sub(r"\b\d{1,3}(?:,\d{3})+\b|\b\d+\b", _integer, text)
    text = text.replace("&", " and ")
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> None:
    """``python -m data_prep.text "Dr. Smith paid $5."`` prints the normalized text (stdin if no argument)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(description="Normalize English text for TTS input.")
    p.add_argument("text", nargs="*", help="text to normalize (default: read lines from stdin)")
    args = p.parse_args(argv)
    lines = [" ".join(args.text)] if args.text else sys.stdin.read().splitlines()
    for line in lines:
        sys.stdout.write(normalize_text(line) + "\n")


if __name__ == "__main__":
    main()
