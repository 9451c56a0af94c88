"""espeak-ng's own phoneme timings: text -> (audio, [(start sample, IPA phoneme)]) via libespeak-ng.

The command line cannot report them (`--pho` needs an MBROLA voice, `-X` has no times); the library
sends phoneme events (espeakINITIALIZE_PHONEME_EVENTS) with the sample where each phoneme starts.
espeak-ng keeps state across texts (a text synthesised after one with quotes came out different from
the command line's, which starts fresh every time; espeak_Terminate + espeak_Initialize in the same
process hung), so `phone_events` runs each text in a new interpreter (`python -m
tts.align.espeak_timing`, which imports only ctypes and numpy): about 0.1 s a text.
"""
from __future__ import annotations

import base64
import ctypes
import ctypes.util
import json
import subprocess
import sys

import numpy as np

__all__ = ["EspeakTimer", "phone_events"]

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_PHONEME_IPA = 0x0001, 0x0002
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_RATE, _PITCH, _WORDGAP = 1, 3, 7
_POS_CHARACTER = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):           # espeak_EVENT of speak_lib.h
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class EspeakTimer:
    """libespeak-ng in synchronous mode with IPA phoneme events: text -> (audio int16 [N], events)."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.cdll.LoadLibrary(name)
        self._cb = _Callback(self._on_audio)          # kept alive as long as self
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self.sample_rate = self._init()

    def _init(self) -> int:
        sr = int(self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                            _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA))
        if sr <= 0:
            raise RuntimeError("espeak_Initialize failed")
        self.lib.espeak_SetSynthCallback(self._cb)
        return sr

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._events.append((int(e.sample), bytes(e.id.string).split(b"\0")[0].decode("utf-8", "replace")))
            i += 1
        return 0

    def synth(self, text: str, voice: str, pitch: int, speed: int, gap: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """(int16 audio [N] at self.sample_rate, [(start sample, IPA phoneme)]), as `espeak-ng -v voice
        -p pitch -s speed -g gap` would speak it."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng voice {voice!r} not found")
        for param, value in ((_RATE, speed), (_PITCH, pitch), (_WORDGAP, gap)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        # the command line's flags: espeakCHARS_AUTO | espeakPHONEMES | espeakENDPAUSE
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, 0x0 | 0x100 | 0x1000, None, None)
        wav = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return wav, [(s, p) for s, p in self._events if p]


def phone_events(text: str, voice: str, pitch: int, speed: int, gap: int) -> tuple[np.ndarray, list[tuple[int, str]], int]:
    """(int16 audio [N], [(start sample, IPA phoneme)], sample rate) of `espeak-ng -v voice -p pitch -s speed
    -g gap text`, synthesised by a fresh libespeak-ng in a child interpreter."""
    req = json.dumps({"text": text, "voice": voice, "pitch": pitch, "speed": speed, "gap": gap})
    proc = subprocess.run([sys.executable, "-m", "tts.align.espeak_timing"], input=req.encode(),
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"espeak timing failed: {proc.stderr.decode(errors='replace').strip()}")
    out = json.loads(proc.stdout)
    wav = np.frombuffer(base64.b64decode(out["wav"]), dtype=np.int16)
    return wav, [(int(s), str(p)) for s, p in out["events"]], int(out["sample_rate"])


def _main(argv: list[str]) -> int:
    """With no arguments (how `phone_events` calls it): a JSON request {text, voice, pitch, speed, gap} on
    stdin, the JSON answer {sample_rate, events, wav (base64 int16)} on stdout. With --text: the phoneme
    start times of one text, one line each."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m tts.align.espeak_timing", description=__doc__.split("\n\n")[0],
                                 epilog="Without arguments it reads a JSON request on stdin (the internal use).")
    ap.add_argument("--text", help="print the phoneme start times of this text")
    ap.add_argument("--voice", default="en-us")
    ap.add_argument("--pitch", type=int, default=50)
    ap.add_argument("--speed", type=int, default=175, help="words per minute")
    ap.add_argument("--gap", type=int, default=0, help="word gap (10 ms units)")
    a = ap.parse_args(argv)
    try:
        req = vars(a) if a.text is not None else json.loads(sys.stdin.read())
        timer = EspeakTimer()
        wav, events = timer.synth(req["text"], req["voice"], int(req["pitch"]), int(req["speed"]), int(req["gap"]))
    except (ValueError, KeyError, RuntimeError, OSError) as e:
        sys.stderr.write(f"error: {e!r} (stdin: a JSON request {{text, voice, pitch, speed, gap}}; "
                         f"or use --text)\n")
        return 2
    if a.text is not None:
        sys.stdout.write("".join(f"{s / timer.sample_rate:8.3f} s  {p}\n" for s, p in events))
    else:
        sys.stdout.write(json.dumps({"sample_rate": timer.sample_rate, "events": events,
                                     "wav": base64.b64encode(wav.astype("<i2").tobytes()).decode()}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
