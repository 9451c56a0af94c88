"""English text normalisation: written text -> the words a person would read aloud.

``normalize_text("Dr. Smith paid $3.50 on May 2nd, 1999 - 20% off!")``
-> ``"Doctor Smith paid three dollars and fifty cents on May second, nineteen ninety-nine — twenty percent off!"``

Used by the text front end (:mod:`data_prep.frontend`) for *every* text, inference input and corpus
transcripts alike (LibriTTS's ``text_norm`` too: normalising it again is a no-op apart from quotes and
dashes), so training never sees a symbol inference cannot produce. What it reads (in this order):

* quotes: curly/angle quotes -> ``"`` and ``'``;
* pauses: ``...``/``. . .``/``…`` -> ``…``; ``--``, spaced ``-``/``–``, ``—`` -> ``" — "`` (the two pause
  tokens of the symbol table); ``N-M``/``N–M`` between numbers -> "N to M";
* negative numbers (``-5``, ``−3``: "minus five"), currencies (``$ £ € ¥``, cents/pence, "$1.5 million",
  "a £5 note" -> "a five pound note"), percentages, units after a number (ft, km, kg, lb, mph, km/h,
  °C, ml, hrs, min, ...), times (``10:30``, ``9:00`` -> "nine o'clock", ``5pm`` -> "five PM");
* abbreviations: titles before a name (Mr., Dr., St. Paul), words after one (etc., Jr., Co., Main St.);
  a sentence-final abbreviation keeps its full stop; "no." is "number" only before a number;
* dates with slashes (normaliser version 3 on): ``12/05/2024`` -> "December fifth, twenty twenty-four"
  (month first, the en-us reading, unless the first number cannot be a month: ``25/12/2024`` -> "December
  twenty-fifth, ..."); four-digit years only;
* numbers: ordinals (``21st``), decades (``1960s``), years *by context* (after in/since/until/from/
  during/year/a month name, or in a range or list with another year), decimals, other integers as
  cardinals ("2000 sheep" -> "two thousand sheep").

Anything else is left as written. Idempotent: ``normalize_text(normalize_text(x)) == normalize_text(x)``.
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text", "number_to_words", "ordinal_to_words", "year_to_words", "unpronounceable",
           "NORMALIZER_VERSION"]

# Bump whenever normalize_text's output changes for some input (it is part of the front-end fingerprint).
# normalize_text(text, version=V) reproduces version V's output, so a model trained on an older version
# is fed text the way it was trained ("3": dates with slashes).
NORMALIZER_VERSION = "3"
_BEFORE_DATES = frozenset({"1", "2"})

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}
_MONTHS = ("January February March April May June July August September October November December "
           "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec").split()

_NUM = r"\d(?:[\d,]*\d)?(?:\.\d+)?"  # 12 / 1,234 / 3.5 (no sign)
# a sentence ends after an abbreviation's full stop if nothing, or a capitalised word, follows
_SENT_END = r"(?=\s*$|\s+[\"'(]?[A-Z])"

# titles: always before a name, their full stop is never a sentence end (unless the text ends there)
_TITLES = {"mr": "Mister", "mrs": "Missus", "ms": "Miss", "dr": "Doctor", "prof": "Professor",
           "capt": "Captain", "gen": "General", "col": "Colonel", "lt": "Lieutenant", "sgt": "Sergeant",
           "rev": "Reverend", "hon": "Honorable", "gov": "Governor", "mt": "Mount", "ft": "Fort"}
# words after which a sentence may end (their full stop is kept then)
_TRAILING = {"etc": "et cetera", "jr": "Junior", "sr": "Senior", "co": "Company", "inc": "Incorporated",
             "ltd": "Limited", "ave": "Avenue", "rd": "Road", "bros": "Brothers", "vs": "versus"}

# unit -> (singular, plural); matched only right after a number
_UNITS = {
    "ft": ("foot", "feet"), "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"), "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"), "kg": ("kilogram", "kilograms"), "lbs": ("pound", "pounds"),
    "lb": ("pound", "pounds"), "oz": ("ounce", "ounces"), "ml": ("milliliter", "milliliters"),
    "hrs": ("hour", "hours"), "hr": ("hour", "hours"), "mins": ("minute", "minutes"), "min": ("minute", "minutes"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", None, None)}

_PUNCT_MAP = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                            "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
                            "\u2212": "-", "\u00a0": " ", "\u2026": "\x00"})  # '…' protected from NFKC
_YEAR_CUE = re.compile(r"(?:\b(?:in|In|since|Since|until|Until|till|from|From|during|During|before|after|circa|"
                       r"year|Year|years|by|between|Between)|\b(?:" + "|".join(_MONTHS) + r")(?:\s+[a-z]+(?:-[a-z]+)?)?,?)\s+$")
_YEAR_LINK = re.compile(r"\s+(?:to|and|or|through|until)\s+$")


# ----------------------------------------------------------------------------- numbers
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


def year_to_words(n: int) -> str:
    """A year as read aloud: 1999 nineteen ninety-nine, 1905 nineteen oh five, 2005 two thousand five."""
    hi, lo = divmod(n, 100)
    if 2000 <= n <= 2009 or n % 1000 == 0:
        return number_to_words(n)
    if lo == 0:
        return number_to_words(hi) + " hundred"
    return number_to_words(hi) + " " + ("oh " + _ONES[lo] if lo < 10 else number_to_words(lo))


def _plural(words: str) -> str:
    head, _, last = words.rpartition(" ")
    hy, dash, tail = last.rpartition("-")
    tail = tail[:-1] + "ies" if tail.endswith("y") else tail + "s"
    return (head + " " if head else "") + hy + dash + tail


def _int(s: str) -> int:
    return int(s.replace(",", ""))


def _number(s: str) -> str:
    """``"1,234.56"`` -> words (cardinal, decimals digit by digit)."""
    whole, _, frac = s.partition(".")
    words = number_to_words(_int(whole)) if whole else ""
    if frac:
        words = (words + " " if words else "") + "point " + " ".join(_ONES[int(d)] for d in frac)
    return words


def _is_year(n: int, digits: str, before: str, last_year_end: int | None) -> bool:
    if len(digits) != 4 or not 1000 <= n <= 2099:
        return False
    if _YEAR_CUE.search(before):
        return True
    link = _YEAR_LINK.search(before)  # "from 1939 to 1945", "in 2005 and 1887"
    return bool(link and last_year_end is not None and link.start() == last_year_end)


def _integers(text: str) -> str:
    """Read the remaining integers: years by context, cardinals otherwise."""
    out, pos, last_year_end = [], 0, None
    for m in re.finditer(r"\b\d{1,3}(?:,\d{3})+\b|\b\d+\b", text):
        digits, n = m.group(0), _int(m.group(0))
        out.append(text[pos:m.start()])
        before = "".join(out)
        if "," not in digits and _is_year(n, digits, before, last_year_end):
            out.append(year_to_words(n))
            last_year_end = len(before) + len(year_to_words(n))
        else:
            out.append(number_to_words(n))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


# ----------------------------------------------------------------------------- rules
def _range(m: re.Match) -> str:
    a, b = m.group(1), m.group(2)
    if len(a) == len(b) == 4 and all(1000 <= int(x) <= 2099 for x in (a, b)):
        return f"{year_to_words(int(a))} to {year_to_words(int(b))}"
    return f"{a} to {b}"


def _adjectival(text: str, start: int, end: int) -> bool:
    """'a £5 note', 'a 12 lb turkey': an amount used as an adjective takes the singular."""
    return bool(re.search(r"\b[Aa]n?\s+$", text[:start]) and re.match(r"\s+[a-z]", text[end:]))


def _money(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    amount, scale = m.group(2), m.group(3)
    if scale:  # "$1.5 million" -> one point five million dollars
        return f"{_number(amount)} {scale} {many}"
    whole_s, _, frac = amount.partition(".")
    whole = _int(whole_s)
    cents = int(frac.ljust(2, "0")[:2]) if frac and sub_one else 0
    if frac and not sub_one:
        return f"{_number(amount)} {many}"
    if _adjectival(m.string, m.start(), m.end()) and not cents:
        return f"{number_to_words(whole)} {one}"
    parts = []
    if whole or not cents:
        parts.append(f"{number_to_words(whole)} {one if whole == 1 else many}")
    if cents:
        parts.append(f"{number_to_words(cents)} {sub_one if cents == 1 else sub_many}")
    return " and ".join(parts)


def _unit(m: re.Match) -> str:
    amount, unit, stop = m.group(1), m.group(2), m.group(3)
    one, many = _UNITS[unit]
    single = amount == "1" or _adjectival(m.string, m.start(), m.end() - len(stop))
    return f"{amount} {one if single else many}" + stop


def _time(m: re.Match) -> str:
    h, mins, ampm = int(m.group(1)), int(m.group(2)), m.group(3)
    words = number_to_words(h)
    if mins == 0:
        return words + (f" {ampm}" if ampm else " o'clock")
    words += " " + ("oh " + _ONES[mins] if mins < 10 else number_to_words(mins))
    return words + (f" {ampm}" if ampm else "")


def _initialism(m: re.Match) -> str:
    """``U.S.A.`` -> ``U S A`` (espeak spells capitals); the last dot stays if it ends the sentence."""
    letters = " ".join(m.group(1).replace(".", ""))
    return letters + ("." if re.match(_SENT_END, m.string[m.end():]) else "")


def _fraction(m: re.Match) -> str:
    """``3/4`` -> three quarters; ``5/16`` -> five sixteenths; ``12/31`` (not a fraction) -> twelve over thirty-one."""
    n, d = int(m.group(1)), int(m.group(2))
    if not 2 <= d <= 16 or n >= d * 10:
        return f"{number_to_words(n)} over {number_to_words(d)}"
    name = {2: "half", 4: "quarter"}.get(d) or ordinal_to_words(d)
    if n != 1:
        name = "halves" if d == 2 else name + "s"
    return f"{number_to_words(n)} {name}"


def _date(m: re.Match) -> str:
    a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
    month, day = (a, b) if 1 <= a <= 12 else (b, a)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group(0)
    return f"{_MONTHS[month - 1]} {ordinal_to_words(day)}, {year_to_words(y)}"


def _abbreviation(m: re.Match) -> str:
    word, key = m.group(1), m.group(1).lower()
    text, end = m.string, m.end()
    at_end = not text[end:].strip()
    if key == "st":  # Saint before a name, Street after one
        prev = re.search(r"(\S+)\s+$", text[:m.start()])
        after_name = bool(prev and prev.group(1)[0].isupper() and not re.search(r"[.!?]$", prev.group(1)))
        if not after_name and re.match(r"\s+[A-Z]", text[end:]):
            return "Saint"
        return "Street" + ("." if re.match(_SENT_END, text[end:]) else "")
    if key in _TITLES:
        if key == "ft" and not (word[0].isupper() and re.match(r"\s+[A-Z]", text[end:])):
            return m.group(0)  # "ft." after a number is the unit (handled earlier); else leave it
        return _TITLES[key] + ("." if at_end else "")
    exp = _TRAILING[key]
    return exp + ("." if key != "vs" and re.match(_SENT_END, text[end:]) else "")


_ABBR_RE = re.compile(r"\b(" + "|".join(sorted({*_TITLES, *_TRAILING, "st"}, key=len, reverse=True))
                      + r")\.(?=\s|$|[,;:!?\"')])", re.I)
_UNIT_RE = re.compile(r"(?<![\w.])(" + _NUM + r")\s?(" + "|".join(
    re.escape(u) for u in sorted(_UNITS, key=len, reverse=True)) + r")(?![\w/])(\.?)")


def _unit_sub(m: re.Match) -> str:
    stop = m.group(3)
    keep = "." if stop and re.match(_SENT_END, m.string[m.end():]) else ""
    out = _unit(m)
    return out[: len(out) - len(stop)] + keep


def normalize_text(text: str, version: str = NORMALIZER_VERSION) -> str:
    """Normalise free text for the phonemizer (see the module docstring for what is covered).

    ``version``: the normaliser version whose output to reproduce (a front end's recorded one)."""
    text = unicodedata.normalize("NFKC", text.translate(_PUNCT_MAP)).replace("\x00", "…")
    text = text.replace("℃", "°C")
    # pauses
    text = re.sub(r"\s*\.\s?\.\s?\.(?!\.)", "…", text)
    text = re.sub(r"…(?=[\w\"'])", "… ", text)
    text = re.sub(r"(?<![\d])(\d+)\s?[-\u2013]\s?(\d+)(?![\d.,]*\d|-?[A-Za-z])", _range, text)  # 5-10, 1939-1945
    text = re.sub(r"\s*(?:--+|\u2014|\u2013|(?<=\s)-(?=\s))\s*", " — ", text)
    # signs, currencies, percentages, times, units
    text = re.sub(r"(?<![\w.])-(?=\.?\d)", "minus ", text)
    text = re.sub(r"([$£€¥])\s?(" + _NUM + r")(?:\s(million|billion|trillion|thousand)\b)?", _money, text)
    text = re.sub(r"(" + _NUM + r")\s?%", r"\1 percent", text)
    ampm = r"\s?([ap])\.?m\b\.?|\s?([AP])M\b"

    def _ampm(m: re.Match) -> str:
        letter = (m.group(2) or m.group(3)).upper()
        keep = "." if m.group(0).endswith(".") and re.match(_SENT_END, m.string[m.end():]) else ""
        return f"{m.group(1)} {letter}M{keep}"

    text = re.sub(r"\b(\d{1,2}(?::\d{2})?)(?:" + ampm + ")", _ampm, text)
    text = re.sub(r"\b(\d{1,2}):(\d{2})\b(?:\s([AP]M)\b)?", _time, text)
    text = _UNIT_RE.sub(_unit_sub, text)
    # abbreviations
    text = re.sub(r"\b[Nn]o\.\s?(?=\d)", lambda m: ("N" if re.search(r"(?:^|[.!?]\s+)$", m.string[:m.start()])
                                                   else "n") + "umber ", text)
    text = re.sub(r"#\s?(?=\d)", "number ", text)
    text = re.sub(r"\be\.g\.", "for example", text, flags=re.I)
    text = re.sub(r"\bi\.e\.", "that is", text, flags=re.I)
    text = re.sub(r"\b((?:[A-Z]\.){2,})", _initialism, text)
    text = _ABBR_RE.sub(_abbreviation, text)
    text = re.sub(r"\b(Mr|Mrs|Ms|Dr)(?=\s+[A-Z])", lambda m: _TITLES[m.group(1).lower()], text)
    text = re.sub(r"\bvs\b", "versus", text)
    # numbers
    if version not in _BEFORE_DATES:
        text = re.sub(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/])", _date, text)
    text = re.sub(r"(?<![\d/])(\d+)/(\d+)(?![\d/])", _fraction, text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: ordinal_to_words(int(m.group(1))), text)
    text = re.sub(r"\b(\d{3}0)s\b", lambda m: _plural(year_to_words(int(m.group(1)))), text)
    text = re.sub(r"(?<![\d.])(\d[\d,]*)?\.(\d+)\b", lambda m: _number((m.group(1) or "") + "." + m.group(2)), text)
    text = _integers(text)
    text = text.replace("&", " and ")
    text = " ".join(text.split())
    text = re.sub(r"\s+([,;:!?.…])", r"\1", text)
    return text.strip(" —") if text.strip(" —") else text


def _readable(c: str) -> bool:
    """Whether an English espeak-ng voice reads `c` as what it is (not as the name of a foreign letter)."""
    if c.isascii():
        return True
    cat = unicodedata.category(c)
    if cat[0] in "PZ" or cat == "Sc" or c in "°℃…":
        return True
    folded = unicodedata.normalize("NFKC", c)
    if folded != c:
        return all(_readable(x) for x in folded)
    return cat[0] in "LM" and "LATIN" in unicodedata.name(c, "")


def unpronounceable(text: str) -> tuple[str, list[str]]:
    """``(text without them, the runs of characters an English voice cannot read)``: other scripts
    (Chinese, Arabic, Cyrillic, Greek), emoji and symbols, non-ASCII digits. Latin letters with
    accents, punctuation and the symbols normalize_text reads stay. Each run is replaced by a space.

    ``unpronounceable("Hello 你好 world 😀!") == ("Hello   world  !", ["你好", "😀"])``"""
    out, runs, cur = [], [], []
    for c in text:
        joiner = unicodedata.category(c) in ("Mn", "Me", "Cf")    # combining marks, ZWJ, variation selectors
        if (joiner and cur) or (not joiner and not _readable(c)):
            cur.append(c)
            continue
        if cur:
            runs.append("".join(cur))
            out.append(" ")
            cur = []
        out.append(c)
    if cur:
        runs.append("".join(cur))
        out.append(" ")
    return "".join(out), list(dict.fromkeys(runs))


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
