"""What the leakage check (data_prep/check.py) measures in the audio: a speaker's median F0 and embedding,
each file's leading/trailing silence and peak."""
from __future__ import annotations

import statistics
from typing import Any

import numpy as np
from tqdm import tqdm

__all__ = ["speaker_features", "audio_stats", "LIMITER_PEAK"]

LIMITER_PEAK = 0.99     # a file whose peak reaches this has hit the limiter


def speaker_features(rows: dict[str, list[dict]], audio: bool, speaker_sim: bool, f0_files: int
                     ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """({speaker: median F0} when audio is read, {speaker: embedding} with speaker_sim), from f0_files files each."""
    by_spk: dict[str, list[str]] = {}
    for s in rows:
        for r in rows[s]:
            by_spk.setdefault(str(r["speaker"]), []).append(r["path"])
    f0 = {}
    if audio:
        for spk, paths in tqdm(sorted(by_spk.items()), desc="median F0", disable=None):
            f0[spk] = _median_f0(paths[:f0_files])
    emb = _speaker_embeddings({k: v[:f0_files] for k, v in by_spk.items()}) if speaker_sim else {}
    return f0, emb


def _median_f0(paths: list[str]) -> float:
    """Median F0 (Hz) over the voiced frames of a few files (the project's tracker, data_prep.pitch)."""
    from data_prep.audio import load_audio
    from data_prep.pitch import track_f0

    tracks = [track_f0(*load_audio(p)) for p in paths]
    voiced = np.concatenate([t[t > 0] for t in tracks]) if tracks else np.zeros(0)
    return float(np.median(voiced)) if len(voiced) else float("nan")


def _silences(path: str, threshold_db: float = -45.0) -> tuple[float, float, float]:
    """(leading silence s, trailing silence s, peak) of one file; silence = 10 ms frames below
    ``threshold_db`` relative to the file's peak."""
    from data_prep.audio import load_audio

    wav, sr = load_audio(path)
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    frame = int(0.01 * sr)
    n = len(wav) // frame
    if n == 0 or peak == 0:
        return 0.0, 0.0, peak
    energy = 20 * np.log10(np.sqrt(np.mean(wav[: n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-9)
    voiced = np.flatnonzero(energy > threshold_db + 20 * np.log10(peak))
    if voiced.size == 0:
        return len(wav) / sr, 0.0, peak
    return voiced[0] * 0.01, (n - 1 - voiced[-1]) * 0.01, peak


def _speaker_embeddings(paths_by_spk: dict[str, list[str]]) -> dict[str, np.ndarray]:
    from resemblyzer import VoiceEncoder, preprocess_wav

    from data_prep.audio import load_audio

    enc = VoiceEncoder("cpu", verbose=False)
    out = {}
    for spk, paths in tqdm(paths_by_spk.items(), desc="speaker embeddings", disable=None):
        wavs = [preprocess_wav(load_audio(p, sample_rate=16000)[0], source_sr=16000) for p in paths]
        out[spk] = enc.embed_speaker(wavs)
    return out


def audio_stats(all_rows: list[dict]) -> dict[str, Any]:
    """Leading/trailing silence and peak level of every file."""
    res = [_silences(r["path"]) for r in tqdm(all_rows, desc="silences", disable=None)]
    lead, trail, peaks = zip(*res)
    return {"files": len(res), "lead_silence_ms_median": round(1000 * statistics.median(lead)),
            "lead_silence_ms_p10": round(1000 * float(np.percentile(lead, 10))),
            "lead_silence_ms_p90": round(1000 * float(np.percentile(lead, 90))),
            "trail_silence_ms_median": round(1000 * statistics.median(trail)),
            "peak_limited_frac": round(sum(p >= LIMITER_PEAK for p in peaks) / len(peaks), 4),
            "peak_0999_frac": round(sum(p >= 0.999 for p in peaks) / len(peaks), 4),
            "peak_max": round(max(peaks), 4)}
