"""The mini corpus's voices: espeak-ng speech for a planned speaker (data_prep/mini_plan.py), trimmed,
levelled under the peak limit and padded with silence; a check that every voice is really distinct."""
from __future__ import annotations

import io
import subprocess

import numpy as np
import soundfile as sf

from data_prep.audio import resample, rms
from data_prep.mini_plan import PEAK_LIMIT, SAMPLE_RATE, Speaker

def espeak_ng_version() -> str:
    """``espeak-ng --version``'s version number (e.g. ``"1.51"``)."""
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False).stdout
    parts = out.split()
    return parts[parts.index("text-to-speech:") + 1] if "text-to-speech:" in parts else out.strip()


def _espeak(args: list[str], text: str) -> bytes:
    cmd = ["espeak-ng", *args, "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        raise RuntimeError(f"espeak-ng failed ({' '.join(cmd)}): {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


_PROBE = "A quick test of this voice, with a few words."


def check_voices(voices: list[str]) -> None:
    """Fail if espeak-ng silently substitutes a voice (``en-us+bogus`` sounds exactly like ``en-us``:
    the variant is missing) or two different voices give identical audio."""
    base: dict[str, bytes] = {}
    audio: dict[bytes, str] = {}
    bad: list[str] = []
    for v in sorted(set(voices)):
        lang, _, variant = v.partition("+")
        if lang not in base:
            base[lang] = _espeak(["-v", lang], _PROBE)
        wav = _espeak(["-v", v], _PROBE)
        if variant and wav == base[lang]:
            bad.append(f"{v} sounds exactly like {lang} (variant {variant!r} missing: espeak-ng substitutes it)")
        elif wav in audio:
            bad.append(f"{v} sounds exactly like {audio[wav]}")
        audio.setdefault(wav, v)
    if bad:
        raise RuntimeError("espeak-ng voice problems (speakers would not be distinct): " + "; ".join(bad))


def _trim(wav: np.ndarray, sr: int, threshold_db: float = -45.0, pad_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing silence, keeping ``pad_s`` seconds (onsets and decays) on each side."""
    frame = int(0.01 * sr)
    n = len(wav) // frame
    if n == 0:
        return wav
    energy = 20 * np.log10(np.sqrt(np.mean(wav[: n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-9)
    voiced = np.flatnonzero(energy > threshold_db + 20 * np.log10(np.max(np.abs(wav)) + 1e-9))
    if voiced.size == 0:
        return wav
    pad = int(pad_s * sr)
    return wav[max(0, voiced[0] * frame - pad): min(len(wav), (voiced[-1] + 1) * frame + pad)]


def synthesize(text: str, speaker: Speaker, level_db: float | None = None, lead_s: float = 0.0,
               trail_s: float = 0.0) -> tuple[np.ndarray, bool]:
    """Speak ``text`` with ``speaker``: float32 mono 24 kHz audio and whether the level had to be lowered.

    The speech is trimmed, brought to ``level_db`` dBFS RMS (measured on the speech, not the padding) and
    padded with ``lead_s`` / ``trail_s`` seconds of silence. The gain is lowered, never clipped, if the
    peak would exceed :data:`PEAK_LIMIT` (``True`` is returned then).
    """
    wav, sr = sf.read(io.BytesIO(_espeak(speaker.espeak_args(), text)), dtype="float32")
    wav = resample(_trim(wav, sr), sr, SAMPLE_RATE)
    level = rms(wav)
    limited = False
    if level > 0:
        gain = 10.0 ** ((speaker.level_db if level_db is None else level_db) / 20.0) / level
        peak = float(np.max(np.abs(wav))) * gain
        if peak > PEAK_LIMIT:
            gain *= PEAK_LIMIT / peak
            limited = True
        wav = wav * gain
    pad = lambda s: np.zeros(int(round(s * SAMPLE_RATE)), np.float32)
    return np.concatenate([pad(lead_s), wav.astype(np.float32), pad(trail_s)]), limited
