"""Input limits of synthesis: the synthesizer (tts/synthesizer.py), its CLI and the demo (tts/demo.py)."""
from __future__ import annotations

MIN_PROMPT_SECONDS = 1.0      # a shorter prompt holds too little of the voice
MAX_PROMPT_SECONDS = 20.0     # a longer prompt leaves the AR few frames of max_frames and is slow to encode
MAX_TEXT_WORDS = 1000         # a longer text is refused (about 6 minutes of speech); --max-words to change

__all__ = ["MIN_PROMPT_SECONDS", "MAX_PROMPT_SECONDS", "MAX_TEXT_WORDS"]
