"""tts.align.train and tts.align.durations on bad input: one line that says what
and where, before the run writes anything, and never exit 0 after doing nothing."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from data_prep.audio import save_audio

TINY = ["train.max_steps=2", "model.channels=16", "model.n_blocks=1", "features.sample_rate=16000",
        "features.frame_rate=50", "train.valid_every=0"]


def _data(tmp: Path, phonemes: str = "h ɛ l oʊ", audio: bool = True) -> tuple[Path, Path]:
    man, ph = [], []
    for i in range(3):
        wav = tmp / f"u{i}.wav"
        if audio:
            t = np.arange(16000) / 16000
            save_audio(wav, (0.1 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32), 16000)
        man.append({"id": f"u{i}", "path": str(wav), "duration": 1.0, "speaker": "s"})
        ph.append({"id": f"u{i}", "phonemes": phonemes})
    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in man))
    (tmp / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ph))
    return tmp / "m.jsonl", tmp / "p.jsonl"


def _train(tmp: Path, man: Path, ph: Path, capsys) -> tuple[int, str]:
    from tts.align.train import main
    with pytest.raises(SystemExit) as e:
        main(["--train-manifest", str(man), "--train-phonemes", str(ph), f"train.exp_dir={tmp / 'exp'}", *TINY])
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize("case", ["empty", "all_missing"])
def test_align_train_without_usable_audio_is_one_line_and_writes_no_logs(tmp_path, capsys, case):
    man, ph = _data(tmp_path, audio=case != "all_missing")
    if case == "empty":
        man.write_text("")
    code, err = _train(tmp_path, man, ph, capsys)
    assert code == 1 and "Traceback" not in err and "ZeroDivisionError" not in err
    assert f"train: no usable utterance in {man}" in err
    if case == "all_missing":
        assert "3 unreadable; first: u0:" in err and "u0.wav" in err
    assert not list((tmp_path / "exp").glob("*.jsonl"))          # no partial losses.jsonl / valid.jsonl


def test_align_train_names_a_phone_outside_the_table(tmp_path, capsys):
    man, ph = _data(tmp_path, phonemes="h ʘ")
    code, err = _train(tmp_path, man, ph, capsys)
    assert code == 1 and "KeyError" not in err
    assert "train: utterance u0: phone 'ʘ' is not in the recognizer's phone table" in err


def test_align_train_prints_no_requires_grad_warning(tmp_path, one_thread):
    from core.config import load_config
    from tts.align.train import AlignerConfig, train
    man, ph = _data(tmp_path)
    cfg = load_config(AlignerConfig, [], [f"data.train_manifest={man}", f"data.train_phonemes={ph}",
                                          f"train.exp_dir={tmp_path / 'exp'}", *TINY])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(cfg)
    assert not [w for w in caught if "requires_grad" in str(w.message)]
    assert (tmp_path / "exp" / "model" / "config.json").is_file()


@pytest.mark.parametrize("case", ["empty", "all_missing"])
def test_align_durations_of_nothing_is_an_error_and_writes_nothing(tmp_path, capsys, case):
    import torch

    from tts.align.durations import main
    from tts.align.features import FeatureConfig
    from tts.align.model import CTCRecognizer, RecognizerConfig
    from tts.align.recognizer import save_recognizer
    torch.manual_seed(0)
    save_recognizer(CTCRecognizer(RecognizerConfig(n_mels=80, channels=16, n_blocks=1)),
                    FeatureConfig(sample_rate=16000, frame_rate=50.0), tmp_path / "aligner")
    man, ph = _data(tmp_path, audio=case != "all_missing")
    if case == "empty":
        man.write_text("")
    out = tmp_path / "d.jsonl"
    assert main(["--model", str(tmp_path / "aligner"), "--manifest", str(man), "--phonemes", str(ph),
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {man}: ") and "nothing written" in err and len(err.strip().splitlines()) == 1
    assert ("no utterance to align" if case == "empty" else "none of its 3 utterances could be aligned") in err
    assert not out.exists()


def test_espeak_timing_help_and_text_mode():
    """`python -m tts.align.espeak_timing --help` crashed (it read JSON from stdin)."""
    import shutil
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "tts.align.espeak_timing", "--help"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0 and "usage: python -m tts.align.espeak_timing" in r.stdout
    r = subprocess.run([sys.executable, "-m", "tts.align.espeak_timing"], input="not json", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    if shutil.which("espeak-ng"):
        from tts.align.espeak_timing import phone_events
        wav, events, sr = phone_events("Hello.", "en-us", 50, 175, 0)
        assert sr > 0 and len(wav) > 0 and [p for _, p in events][:1] == ["h"]


def test_boundaries_input_errors_are_one_line(tmp_path, capsys):
    """Input errors came inside a traceback; the needed <file>.meta.json was undocumented."""
    from tts.align.boundaries import main
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    assert main(["--durations", str(tmp_path / "d.jsonl"), "--phonemes", "p", "--corpus", str(corpus)]) == 2
    assert "no mini_corpus.json" in capsys.readouterr().err
    size = dict(train_speakers=1, test_speakers=1, dev_speakers=1, train_utts=1, dev_utts=1, test_utts=1)
    (corpus / "mini_corpus.json").write_text(json.dumps({"size": size, "seed": 0}))
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "a", "frames": 2, "durations": [1, 1], "logp": 0}) + "\n")
    code = main(["--durations", str(tmp_path / "d.jsonl"), "--phonemes", "p", "--corpus", str(corpus)])
    err = capsys.readouterr().err
    assert code == 2 and "d.meta.json not found" in err and "--frame-rate" in err and "Traceback" not in err
