"""TTS evaluation: WER text handling, offline ASR (pocketsphinx; a tiny random transformers CTC model),
speaker similarity, the zero-shot list, and the report on a folder of outputs."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tts.evaluation.asr import normalize_for_wer, word_error_rate

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

SENTENCES = [
    "The old farmer carried seven heavy baskets to the market.",
    "A bright yellow kite flew over the quiet village.",
    "My sister painted the kitchen door green yesterday.",
    "The children watched the little boat drift down the river.",
]


def espeak(path: Path, text: str, voice: str = "en-us+m1", pitch: int = 40) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-w", str(path), text], check=True,
                   capture_output=True)
    return path


def test_normalize_for_wer_uses_the_project_normaliser():
    assert normalize_for_wer("Dr. Smith paid $3!") == "doctor smith paid three dollars"
    assert normalize_for_wer("  \u201cWell,\u201d she said -- 'no'.") == "well she said no"


def test_word_error_rate_counts_and_per_item():
    w = word_error_rate(["the cat sat", "a dog"], ["the cat sat down", "a frog"])
    assert (w.substitutions, w.deletions, w.insertions, w.ref_words) == (1, 0, 1, 5)
    assert w.wer == pytest.approx(2 / 5)
    assert w.per_item == pytest.approx([1 / 3, 1 / 2])
    assert word_error_rate(["Hello, World!"], ["hello world"]).wer == 0.0
    assert word_error_rate(["one two"], [""]).wer == 1.0
    with pytest.raises(ValueError, match="2 references but 1"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(["?!"], ["x"])


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Four sentences by one espeak voice (speaker A), one by another (speaker B)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    d = tmp_path_factory.mktemp("speech")
    a = [espeak(d / f"a{i}.wav", s) for i, s in enumerate(SENTENCES)]
    b = espeak(d / "b0.wav", SENTENCES[0], voice="en-gb+f3", pitch=85)
    return {"a": a, "b": b, "dir": d}


@needs_espeak
def test_pocketsphinx_with_test_text_lm_recognises_speech_not_noise(speech):
    from tts.evaluation.asr import PocketSphinxASR
    asr = PocketSphinxASR(lm_texts=SENTENCES)
    assert asr.constrained and "LM built from the 4" in asr.name
    hyps = []
    for p in speech["a"]:
        wav, sr = sf.read(p, dtype="float32")
        hyps.append(asr.transcribe(wav, sr))
    assert word_error_rate(SENTENCES, hyps).wer < 0.5, hyps
    noise = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
    assert word_error_rate(SENTENCES[:1], [asr.transcribe(noise, 16000)]).wer > 0.7
    # a transcript depends on its audio only, not on what the decoder heard before
    wav, sr = sf.read(speech["a"][1], dtype="float32")
    assert asr.transcribe(wav, sr) == hyps[1]


def _tiny_ctc_dir(d: Path, letter: str = "K") -> Path:
    """A random 1-layer HuBERT-CTC + its processor whose head always prefers `letter`."""
    import torch
    from transformers import (HubertConfig, HubertForCTC, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2Processor)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: 3 + i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")}}
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(d / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                  return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(d)
    cfg = HubertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8),
                       num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, pad_token_id=0)
    torch.manual_seed(0)
    model = HubertForCTC(cfg)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
        model.lm_head.bias[vocab[letter]] = 10.0
    model.save_pretrained(d)
    return d


def test_transformers_ctc_asr_from_a_local_directory(tmp_path):
    from tts.evaluation.asr import TransformersASR, load_asr
    d = _tiny_ctc_dir(tmp_path / "ctc", letter="K")
    asr = load_asr(d)
    assert isinstance(asr, TransformersASR) and asr.kind == "ctc" and not asr.constrained
    wav = np.random.default_rng(1).normal(0, 0.1, 24000).astype(np.float32)
    # every frame argmaxes to K; CTC collapses repeats into one letter
    assert asr.transcribe(wav, 24000) == "K"
    assert word_error_rate(["k"], [asr.transcribe(wav, 24000)]).wer == 0.0
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_asr(tmp_path / "nothing_here")


@needs_espeak
def test_speaker_similarity_same_voice_beats_other_voice(speech):
    from tts.evaluation.speaker import SpeakerEncoder, cosine
    enc = SpeakerEncoder()
    emb = {k: enc.embed(*sf.read(p, dtype="float32")) for k, p in
           (("a0", speech["a"][0]), ("a1", speech["a"][1]), ("b0", speech["b"]))}
    assert emb["a0"].shape == (256,) and np.linalg.norm(emb["a0"]) == pytest.approx(1.0, abs=1e-3)
    same, other = cosine(emb["a0"], emb["a1"]), cosine(emb["a0"], emb["b0"])
    assert same > other + 0.05, (same, other)
    with pytest.raises(ValueError, match="non-empty mono"):
        enc.embed(np.zeros((2, 100), np.float32), 16000)


def _manifest(tmp: Path, durations: dict[str, list[float]], sr: int = 16000) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for spk, durs in durations.items():
        for i, dur in enumerate(durs):
            path = tmp / f"{spk}_{i}.wav"
            n = int(dur * sr)
            wav = np.zeros(n + sr // 2, np.float32)          # 0.25 s of silence each side
            wav[sr // 4: sr // 4 + n] = rng.normal(0, 0.1, n)
            sf.write(path, wav, sr)
            rows.append({"id": f"{spk}_{i}", "path": str(path), "duration": dur + 0.5, "speaker": spk,
                         "text_norm": f"sentence {i} of speaker {spk}."})
    return rows


def test_zeroshot_list_prompts_are_other_utterances_of_the_same_speaker(tmp_path, caplog):
    from tts.zeroshot_list import ListConfig, build_list
    rows = _manifest(tmp_path, {"s1": [2.5, 5.0, 6.0, 1.0], "s2": [7.0, 8.0, 6.5]})
    items = build_list(rows, tmp_path / "synth", ListConfig(min_duration=3.5), train_speakers={"s2", "t9"})
    assert "not unseen" in caplog.text and "s2" in caplog.text
    by_id = {r["id"]: r for r in rows}
    assert sorted(it["id"] for it in items) == ["s1_1", "s1_2", "s2_0", "s2_1", "s2_2"]
    for it in items:
        p = by_id[it["prompt_id"]]
        assert it["prompt_id"] != it["id"] and p["speaker"] == it["speaker"]
        assert it["prompt_text"] == p["text_norm"] and it["text"] == by_id[it["id"]]["text_norm"]
        assert Path(it["prompt_wav"]).is_file() and it["out_wav"].endswith(f"wavs/{it['id']}.wav")
    s1 = [it for it in items if it["speaker"] == "s1"]
    # s1 has a 3.0 s utterance (2.5 s of speech + silence) inside the 2-4.5 s window
    assert all(it["prompt_id"] == "s1_0" and it["prompt_in_window"] for it in s1)
    # leading/trailing silence is cut (with a 50 ms margin)
    assert 2.5 <= s1[0]["prompt_duration"] <= 2.7
    # s2 has none in the window: the shortest other utterance, flagged
    assert all(not it["prompt_in_window"] for it in items if it["speaker"] == "s2")
    assert next(it for it in items if it["id"] == "s2_2")["prompt_id"] == "s2_0"

    capped = build_list(rows, tmp_path / "synth2", ListConfig(min_duration=3.0, max_per_speaker=1))
    assert sorted(it["speaker"] for it in capped) == ["s1", "s2"]
    with pytest.raises(ValueError, match="no test utterance qualifies"):
        build_list(rows, tmp_path / "synth3", ListConfig(min_duration=30.0))


@pytest.mark.slow
@needs_espeak
def test_evaluate_rows_targets_and_report(speech, tmp_path):
    """Ground truth / resynthesis / TTS rows on one stack; the TTS row's outputs are a copy of the
    recording (item 0) and noise (item 1), so their scores are known relative to the ground truth."""
    from tests.codec.helpers_inference import tiny_codec
    from tts.evaluation.report import write_report
    from tts.evaluate import EvalConfig, evaluate, load_items, main

    codec_dir = tmp_path / "codec"
    tiny_codec(0).save_pretrained(codec_dir)
    d = tmp_path / "synth"
    (d / "wavs").mkdir(parents=True)
    a = speech["a"]
    rows = []
    for i, (ref, prompt) in enumerate(((a[1], a[0]), (a[2], a[3]))):
        rows.append({"id": f"u{i}", "speaker": "A", "text": SENTENCES[[1, 2][i]], "ref_wav": str(ref),
                     "prompt_wav": str(prompt), "prompt_text": SENTENCES[[0, 3][i]],
                     "out_wav": str(d / "wavs" / f"u{i}.wav")})
    shutil.copy(a[1], d / "wavs" / "u0.wav")
    sf.write(d / "wavs" / "u1.wav", np.random.default_rng(0).normal(0, 0.1, 48000).astype(np.float32), 16000)
    (d / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    items = load_items(d / "list.jsonl")
    rep = evaluate(items, EvalConfig(codec=str(codec_dir), n_q=2, dnsmos=False), out_dir=tmp_path / "eval")
    assert set(rep.rows) == {"ground_truth", "resynthesis", "tts"}
    gt, tts, rs = rep.rows["ground_truth"], rep.rows["tts"], rep.rows["resynthesis"]
    # item 0 is the recording itself: same transcript, same similarity to the prompt
    assert rep.items[0]["tts"]["hyp"] == rep.items[0]["ground_truth"]["hyp"]
    assert rep.items[0]["tts"]["sim"] == pytest.approx(rep.items[0]["ground_truth"]["sim"], abs=1e-5)
    assert rep.items[1]["tts"]["wer"] > rep.items[1]["ground_truth"]["wer"]
    assert tts.wer > gt.wer and gt.sim > tts.sim
    assert rs.codec_metrics["mel"] > 0 and rs.codec_metrics["pesq"] is not None
    assert Path(rep.items[0]["resynthesis"]["wav"]).is_file()
    assert rep.setting["asr_constrained"] and rep.setting["n_q"] == 2
    t = rep.targets
    # the targets; one speaker only: no different-speaker floor, so no SIM target
    assert t["wer"]["met"] == (tts.wer <= 1.5 * rs.wer) and "sim" not in t and rep.sim_floor is None
    assert t["duration"]["tts"] == pytest.approx(float(np.median([it["duration_ratio"] for it in rep.items])))

    md = write_report(rep, items, tmp_path / "eval", examples=1).read_text()
    assert "constrained" in md and "TTS WER <= 1.5 x resynthesis WER" in md and "same-speaker ceiling" in md
    for png in ("scores.png", "spectrograms.png"):
        assert (tmp_path / "eval" / png).stat().st_size > 1000 and f"({png})" in md
    assert "(examples/u0/tts.wav)" in md and (tmp_path / "eval" / "examples" / "u0" / "prompt.wav").is_file()
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["rows"]["tts"]["wer"] == pytest.approx(tts.wer)

    # any folder of outputs: <id>.wav + <id>.txt, no list -> a TTS row only (no codec given)
    f = tmp_path / "folder"
    f.mkdir()
    shutil.copy(a[1], f / "x.wav")
    (f / "x.txt").write_text(SENTENCES[1])
    shutil.copy(a[3], f / "y.wav")                  # no transcript: left out
    assert main([str(f), "--out", str(tmp_path / "eval2"), "--no-dnsmos", "--examples", "0"]) == 0
    got = json.loads((tmp_path / "eval2" / "report.json").read_text())
    assert list(got["rows"]) == ["tts"] and got["rows"]["tts"]["n"] == 1 and got["targets"] == {}
    assert main(["--out", str(tmp_path / "eval3"), "--list", str(tmp_path / "missing.jsonl")]) == 2
