"""Speaker similarity: cosine of resemblyzer d-vectors (GE2E LSTM, weights inside the wheel).

``SpeakerEncoder().embed(wav, sr)`` -> unit-norm [256] float32; ``cosine(a, b)`` in [-1, 1].
resemblyzer's preprocessing trims silence with webrtcvad (which imports ``pkg_resources``: hence
``setuptools<81`` in the eval extra) and normalises the level, so quiet or padded outputs are
compared on their speech only. The paper's WavLM-TDNN verifier is not available offline; absolute
values from this encoder are higher (two different espeak voices already score ~0.7), so a report
always shows the same-speaker ceiling and a different-speaker floor next to the TTS's score.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from data_prep.audio import resample

log = logging.getLogger(__name__)

SPEAKER_SAMPLE_RATE = 16000


class SpeakerEncoder:
    """Embeds waveforms with resemblyzer's VoiceEncoder on CPU (or ``device``)."""

    def __init__(self, device: str = "cpu"):
        with warnings.catch_warnings():
            # webrtcvad's pkg_resources import warns on every setuptools < 81
            warnings.simplefilter("ignore")
            try:
                from resemblyzer import VoiceEncoder, preprocess_wav
            except ImportError as e:  # pragma: no cover - the eval extra installs it
                raise ImportError("resemblyzer is not installed (pip install 'ndvq[eval]'; it needs "
                                  "setuptools<81 for webrtcvad)") from e
        self._preprocess = preprocess_wav
        self.encoder = VoiceEncoder(device, verbose=False)
        self.name = "resemblyzer GE2E d-vector (256-d, weights bundled with the package)"

    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """wav [T] float -> unit-norm embedding [256]. Raises ValueError when no speech is left."""
        w = np.asarray(wav, dtype=np.float32)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"speaker embedding needs a non-empty mono [T] waveform, got shape {w.shape}")
        if sample_rate != SPEAKER_SAMPLE_RATE:
            w = resample(w, sample_rate, SPEAKER_SAMPLE_RATE)
        pre = self._preprocess(w, source_sr=SPEAKER_SAMPLE_RATE)
        if pre.size < SPEAKER_SAMPLE_RATE // 10:
            # the VAD found (almost) no speech: embed the raw signal rather than nothing
            log.debug("speaker: VAD kept %d samples; embedding the unprocessed waveform", pre.size)
            pre = w
        e = self.encoder.embed_utterance(pre)
        return np.asarray(e, dtype=np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (resemblyzer's are unit-norm already; normalise anyway)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))
