"""Input limits of synthesis: the synthesizer (tts/synthesizer.py), its CLI and the demo (tts/demo.py), and
the one rule for an item id that becomes a file name (tts.synthesize --list, tts.evaluate, tts.zeroshot_list)."""
from __future__ import annotations

import argparse
import re

MIN_PROMPT_SECONDS = 1.0      # a shorter prompt holds too little of the voice
MAX_PROMPT_SECONDS = 20.0     # a longer prompt leaves the AR few frames of max_frames and is slow to encode
MAX_TEXT_WORDS = 1000         # a longer text is refused (about 6 minutes of speech); --max-words to change
MAX_TEXT_CHARS_PER_WORD = 20  # a text over max words x this many characters is refused before it is phonemised
MAX_PROMPT_TEXT_CHARS = 1000  # a 20 s prompt says about 60 words (350 characters); refused before phonemising

# an item id, used as a file name in an output folder: no folder parts, no leading dot, no absolute path
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ID_RULE = "use letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 128)"


class BadItemId(ValueError):
    """An id that cannot name a file inside its output folder."""


def check_item_id(rid, where: str) -> str:
    """`rid` if it is a plain file name by ID_RE (so `<out>/<id>.wav` stays inside `<out>`), else BadItemId
    naming `where` (e.g. "list.jsonl:3")."""
    if not isinstance(rid, str) or not ID_RE.fullmatch(rid):
        raise BadItemId(f"{where}: id {rid!r} cannot be a file name: {ID_RULE}")
    return rid


def text_problem(value, what: str, max_chars: int | None) -> str | None:
    """Why `value` cannot be a text (not a string, empty, or over `max_chars` characters), or None. Checked
    by length first: a huge text is refused before any work on it."""
    if not isinstance(value, str):
        return f"{what} must be a string, got {type(value).__name__} {value!r:.40}"
    if max_chars and len(value) > max_chars:
        return f"{what} has {len(value):,} characters; the limit is {max_chars:,}"
    if not value.strip():
        return f"{what} is empty"
    return None


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """--help of the CLIs that take these limits (synthesis, the demo): each default that is a value."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or not action.help:
            return action.help
        return super()._get_help_string(action)


__all__ = ["DefaultsHelp", "MIN_PROMPT_SECONDS", "MAX_PROMPT_SECONDS", "MAX_TEXT_WORDS", "MAX_TEXT_CHARS_PER_WORD",
           "MAX_PROMPT_TEXT_CHARS", "ID_RE", "ID_RULE", "BadItemId", "check_item_id", "text_problem"]
