from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from data_prep.audio import AudioError, audio_info, load_audio, normalize_loudness, resample, rms, save_audio


def _sine(sr: int, seconds: float = 0.5, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_save_load_roundtrip_numpy(tmp_path):
    wav = _sine(16000)
    path = tmp_path / "a.wav"
    save_audio(path, wav, 16000)
    info = sf.info(str(path))
    assert info.subtype == "PCM_16" and info.samplerate == 16000 and info.channels == 1
    back, sr = load_audio(path)
    assert sr == 16000 and back.dtype == np.float32 and back.shape == wav.shape
    assert np.max(np.abs(back - wav)) < 1e-3  # 16-bit quantisation only
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temporary file left


def test_save_accepts_torch_1xT_and_clips(tmp_path):
    wav = torch.linspace(-2.0, 2.0, 8000).unsqueeze(0)  # [1, T], out of range
    save_audio(tmp_path / "t.wav", wav, 8000)
    back, _ = load_audio(tmp_path / "t.wav")
    assert back.shape == (8000,)
    assert back.max() <= 1.0 and back.min() >= -1.0
    assert np.isclose(back.max(), 1.0, atol=1e-3) and np.isclose(back.min(), -1.0, atol=1e-3)


def test_save_float_subtype(tmp_path):
    save_audio(tmp_path / "f.wav", _sine(8000), 8000, subtype="FLOAT")
    assert sf.info(str(tmp_path / "f.wav")).subtype == "FLOAT"


def test_load_stereo_mixes_to_mono_and_resamples(tmp_path):
    left, right = _sine(22050, amp=0.4), _sine(22050, amp=0.2)
    sf.write(str(tmp_path / "s.flac"), np.stack([left, right], axis=1), 22050)
    mono, sr = load_audio(tmp_path / "s.flac")
    assert sr == 22050 and mono.ndim == 1
    assert np.allclose(mono, (left + right) / 2, atol=1e-3)
    multi, _ = load_audio(tmp_path / "s.flac", mono=False)
    assert multi.shape == (2, len(left))
    res, sr2 = load_audio(tmp_path / "s.flac", sample_rate=24000)
    assert sr2 == 24000 and abs(len(res) - round(len(left) * 24000 / 22050)) <= 1


def test_resample_preserves_frequency():
    wav = _sine(22050, seconds=1.0, freq=1000.0)
    out = resample(wav, 22050, 24000)
    assert len(out) == 24000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 24000 / len(out) - 1000.0) < 2.0


@pytest.mark.parametrize("kind", ["missing", "garbage", "empty"])
def test_load_errors_name_file_and_reason(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "garbage":
        path.write_bytes(b"this is not audio at all" * 10)
    elif kind == "empty":
        sf.write(str(path), np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    assert str(path) in str(exc.value)
    assert exc.value.reason
    if kind == "empty":
        assert "empty" in exc.value.reason


def test_audio_info_and_rms(tmp_path):
    save_audio(tmp_path / "i.wav", np.zeros((1, 1234), dtype=np.float32), 8000)
    assert audio_info(tmp_path / "i.wav") == (1234, 8000, 1)
    with pytest.raises(AudioError):
        audio_info(tmp_path / "nope.wav")
    assert rms(np.ones(10)) == pytest.approx(1.0)
    assert rms(np.zeros(0)) == 0.0


def test_normalize_loudness():
    wav = _sine(16000, amp=0.01)
    out = normalize_loudness(wav, target_dbfs=-20.0)
    assert 20 * np.log10(rms(out)) == pytest.approx(-20.0, abs=0.01)
    loud = normalize_loudness(_sine(16000, amp=0.01), target_dbfs=0.0)  # would clip: peak limited
    assert np.max(np.abs(loud)) <= 1.0
    silent = np.zeros(100, dtype=np.float32)
    assert np.array_equal(normalize_loudness(silent), silent)
