"""Synthesizer and `python -m tts.synthesize` on a tiny random codec and tiny random models."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.tts.helpers_models import export_model, tiny_exp

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

SR = 22050          # prompts at another rate than the tiny codec's 16 kHz: resampled


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/tts/conftest.py


def prompt_wav(seconds=2.0, sr=SR, seed=0, amp=0.2) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    return (amp * np.sin(2 * np.pi * (150 + 50 * seed) * t) * np.sin(2 * np.pi * 1.5 * t)
            + 0.01 * amp * rng.standard_normal(t.size)).astype(np.float32)


def items():
    return [{"text": "Hello there. How are you today?", "prompt_wav": prompt_wav(2.0, seed=0),
             "prompt_text": "a test prompt", "prompt_sr": SR},
            {"text": "Another sentence.", "prompt_wav": prompt_wav(1.5, seed=1), "prompt_text": "the second voice",
             "prompt_sr": SR},
            {"text": "A third one, with a comma.", "prompt_wav": prompt_wav(2.5, seed=2, sr=16000),
             "prompt_text": "third prompt", "prompt_sr": 16000}]


def test_seeded_and_batched_equals_one_by_one(syn):
    batch = syn.synthesize_batch(items(), seed=10, batch_size=8)
    assert [r.seed for r in batch] == [10, 11, 12]
    assert batch[0].sentences == ["Hello there.", "How are you today?"] and len(batch[0].frames) == 2
    for i, it in enumerate(items()):
        one = syn.synthesize(it["text"], it["prompt_wav"], it["prompt_text"], prompt_sr=it["prompt_sr"], seed=10 + i)
        assert torch.equal(one.codes, batch[i].codes)
        np.testing.assert_array_equal(one.audio, batch[i].audio)
        assert one.sample_rate == syn.sample_rate == 16000 and one.audio.dtype == np.float32
        assert one.codes.shape[0] == syn.n_q and one.codes.shape[1] == sum(one.frames) > 0
    # a small batch size (sentences split over several decoding batches) changes nothing either
    small = syn.synthesize_batch(items(), seed=10, batch_size=2)
    assert all(torch.equal(a.codes, b.codes) for a, b in zip(batch, small))
    other = syn.synthesize_batch(items()[:1], seed=99)[0]
    assert not torch.equal(other.codes, batch[0].codes)


def test_two_sentences_are_joined_with_a_pause(syn):
    r = syn.synthesize("One. Two.", prompt_wav(), "a test prompt", prompt_sr=SR, seed=1)
    hop = syn.codec.hop_length
    assert len(r.audio) == sum(r.frames) * hop + int(syn.pause_seconds * syn.sample_rate)


@pytest.mark.parametrize("change, message", [
    (dict(text="   "), "text is empty"),
    (dict(text="!!! ... ?"), "no pronounceable symbols"),
    (dict(prompt_wav=np.zeros(SR * 2, dtype=np.float32)), "silent"),
    (dict(prompt_wav=prompt_wav(0.5)), "at least 1 s"),
    (dict(prompt_wav=prompt_wav(25.0)), "the limit is"),
    (dict(prompt_text=""), "prompt_text is empty"),
    (dict(prompt_wav="/nonexistent/p.wav"), "file not found"),
    (dict(prompt_sr=None), "prompt_sr is required"),
])
def test_bad_input_is_a_clear_error(syn, change, message):
    from tts.synthesize import SynthesisError
    it = {**items()[0], **change}
    with pytest.raises(SynthesisError, match=message):
        syn.synthesize(it["text"], it["prompt_wav"], it["prompt_text"], prompt_sr=it["prompt_sr"], seed=0)


def test_split_sentences():
    from tts.synthesize import split_sentences
    assert split_sentences("Hi there. How are you?  Fine!") == ["Hi there.", "How are you?", "Fine!"]
    long = ", ".join(["word " * 10] * 10)
    parts = split_sentences(long, max_chars=120)
    assert all(len(p) <= 120 for p in parts) and " ".join(parts).split() == long.split()
    assert split_sentences("x" * 50 + " " + "y" * 50, max_chars=60) == ["x" * 50, "y" * 50]


def test_loading_checks_codec_frontend_and_part(exp, tmp_path):
    from data_prep.frontend import FrontendMismatch, TextFrontend
    from tts.checkpoint import CodecMismatch
    from tts.synthesize import Synthesizer
    from tests.codec.helpers_inference import tiny_codec
    from tts.checkpoint import load_tts_model
    other = tmp_path / "exp"
    shutil.copytree(exp, other)
    codec = tiny_codec(0)
    ar = load_tts_model(exp / "ar" / "model").model
    export_model(ar, "ar", other / "ar" / "model", "f" * 64, codec, TextFrontend.default())
    with pytest.raises(CodecMismatch, match="f" * 64):
        Synthesizer.from_pretrained(exp_dir=other)
    sha = json.loads((exp / "nar" / "model" / "config.json").read_text())["codec_sha256"]
    export_model(ar, "ar", other / "ar" / "model", sha, codec, TextFrontend.default(with_stress=False))
    with pytest.raises(FrontendMismatch, match="with_stress"):
        Synthesizer.from_pretrained(exp_dir=other)
    with pytest.raises(ValueError, match="the NAR model is expected here"):
        Synthesizer.from_pretrained(exp_dir=exp, nar=exp / "ar" / "model")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        Synthesizer.from_pretrained(exp_dir=tmp_path / "missing")


@pytest.mark.slow
def test_cli_single_and_batch(exp, tmp_path, monkeypatch):
    from tts.synthesize import main
    work = tmp_path / "recipe"
    work.mkdir()
    shutil.copytree(exp, work / "exp")
    monkeypatch.chdir(work)                       # like egs/libritts: exp/ holds codec, AR and NAR
    sf.write(work / "p.wav", prompt_wav(2.0), SR)
    assert main(["--text", "Good morning.", "--prompt-wav", "p.wav", "--prompt-text", "a test prompt",
                 "--out", "out.wav", "--seed", "3"]) == 0
    wav, sr = sf.read(work / "out.wav")
    assert sr == 16000 and len(wav) > 0
    rows = [{"id": "a", "text": "First item.", "prompt_wav": "p.wav", "prompt_text": "a test prompt"},
            {"id": "bad", "text": "", "prompt_wav": "p.wav", "prompt_text": "a test prompt"},
            {"id": "c", "text": "Third item.", "prompt_wav": "p.wav", "prompt_text": "a test prompt"}]
    (work / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["--list", "list.jsonl", "--out-dir", "out", "--seed", "3", "--batch-size", "2"]) == 1
    res = [json.loads(line) for line in (work / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in res] == ["a", "bad", "c"]
    assert "text is empty" in res[1]["error"] and (work / "out" / "a.wav").exists() and (work / "out" / "c.wav").exists()
    assert [res[0]["seed"], res[2]["seed"]] == [3, 5]
    assert main(["--text", "x", "--prompt-wav", "p.wav", "--prompt-text", "y", "--exp-dir", "nowhere"]) == 2


def test_nar_gets_the_phonemes_of_its_training_prompt_mode(syn, monkeypatch):
    from dataclasses import replace
    from tts.synthesizer import _Segment
    seg = _Segment(0, 0, "x", torch.arange(10, 20), 4, None)
    assert syn.nar.cfg.prompt_mode == "prefix" and torch.equal(syn._nar_phonemes(seg), torch.arange(10, 20))
    monkeypatch.setattr(syn.nar, "cfg", replace(syn.nar.cfg, prompt_mode="other_utterance"))
    assert torch.equal(syn._nar_phonemes(seg), torch.arange(16, 20))


@pytest.mark.parametrize("nar_alignment", ["attention", "durations"])
def test_durations_ar_plans_the_length_and_batches_like_one_by_one(tmp_path, nar_alignment):
    """An AR with ar_alignment=durations: every sentence stops on its planned durations (no <eos>), a
    batch equals one-by-one synthesis, and speed=2 gives shorter audio than speed=1; a NAR that reads
    durations gets the same plan in a batch as alone."""
    from tts.sampling import SamplingConfig
    from tts.synthesize import Synthesizer
    syn = Synthesizer.from_pretrained(exp_dir=tiny_exp(tmp_path, ar_alignment="durations",
                                                       nar_alignment=nar_alignment))
    with torch.no_grad():                  # an untrained head plans ~0 frames (then 1 per phone): give it ~6
        syn.ar.duration_head.bias.fill_(2.0)
    batch = syn.synthesize_batch(items(), seed=3, batch_size=8)
    for i, it in enumerate(items()):
        assert set(batch[i].stops) == {"durations"} and all(f > 0 for f in batch[i].frames)
        one = syn.synthesize(it["text"], it["prompt_wav"], it["prompt_text"], prompt_sr=it["prompt_sr"], seed=3 + i)
        assert torch.equal(one.codes, batch[i].codes)
    it = items()[1]
    slow = syn.synthesize(it["text"], it["prompt_wav"], it["prompt_text"], prompt_sr=SR, seed=0)
    fast = syn.synthesize(it["text"], it["prompt_wav"], it["prompt_text"], prompt_sr=SR, seed=0,
                          sampling=SamplingConfig(speed=2.0))
    assert sum(fast.frames) < sum(slow.frames)
