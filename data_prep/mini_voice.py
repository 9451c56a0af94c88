"""The mini corpus's voices: espeak-ng speech for a planned speaker (data_prep/mini_plan.py), trimmed,
levelled under the peak limit and padded with silence; a check that every voice is really distinct; the
folder of designed voices (data_prep/mini_design.py) that espeak-ng reads with ``--path``."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from core.io import atomic_write_text
from data_prep.audio import resample, rms
from data_prep.mini_plan import PEAK_LIMIT, SAMPLE_RATE, Speaker

# What a designed voice needs of espeak-ng's data folder (English only: 0.9 MB of the 13 MB)
DATA_FILES = ("phontab", "phonindex", "phondata", "intonations", "en_dict")
VARIANT_DIR = "voices/!v"

def espeak_ng_version() -> str:
    """``espeak-ng --version``'s version number (e.g. ``"1.51"``)."""
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False).stdout
    parts = out.split()
    return parts[parts.index("text-to-speech:") + 1] if "text-to-speech:" in parts else out.strip()


def espeak_data_dir() -> Path:
    """The system's espeak-ng data folder, as ``espeak-ng --version`` reports it ("Data at: DIR")."""
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"Data at:\s*(\S+)", out)
    if not m or not Path(m.group(1)).is_dir():
        raise RuntimeError(f"cannot find espeak-ng's data folder in `espeak-ng --version`: {out.strip()!r}")
    return Path(m.group(1))


def write_voice_folder(out: Path, variants: dict[str, str]) -> Path:
    """A private espeak-ng data folder at ``out`` (read with ``espeak-ng --path=out``): the English part of
    the system's data plus one variant file per designed voice (name -> file text). Nothing is written to a
    system folder; files already there with the same text are left alone."""
    src = espeak_data_dir()
    for name in DATA_FILES:
        if not (out / name).exists() or (out / name).stat().st_size != (src / name).stat().st_size:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, out / name)
    lang = out / "lang" / "gmw"
    lang.mkdir(parents=True, exist_ok=True)
    for f in (src / "lang" / "gmw").glob("en*"):
        if not (lang / f.name).exists():
            shutil.copyfile(f, lang / f.name)
    vdir = out / VARIANT_DIR
    vdir.mkdir(parents=True, exist_ok=True)
    for name, text in variants.items():
        f = vdir / name
        if not f.exists() or f.read_text(encoding="utf-8") != text:
            atomic_write_text(f, text)
    return out


def check_designed_voices(speakers: list[Speaker], probes: int = 3) -> None:
    """Fail unless espeak-ng reads the designed voices from their folder: a few of them must sound unlike
    the plain accent voice (a missing or unread variant is silently replaced by it) and unlike each other,
    and no two designs may be equal (checked on the design, so hundreds of voices cost no audio)."""
    designed = [s for s in speakers if s.design]
    if len({s.design for s in designed}) != len(designed):
        raise RuntimeError("two designed voices have the same design")
    if not designed:
        return
    seen: dict[bytes, str] = {}
    base = _espeak(["--path=" + designed[0].voice_dir, "-v", designed[0].voice], _PROBE)
    for s in designed[:: max(1, len(designed) // probes)][:probes]:
        wav = _espeak(["--path=" + s.voice_dir, "-v", s.espeak_voice()], _PROBE)
        if wav == base or wav in seen:
            raise RuntimeError(f"espeak-ng did not read the designed voice {s.variant} from {s.voice_dir} "
                               f"(it sounds like {seen.get(wav, s.voice)})")
        seen[wav] = s.variant


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
