"""`python -m tts.synthesize`: item ids stay inside --out-dir, bad arguments are one-line errors before
any model is loaded, text is split after normalisation, unreadable text is named, long text is bounded
and shows progress."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch


pytestmark = [pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
              pytest.mark.usefixtures("one_thread")]


def _prompt(path: Path) -> Path:
    t = np.arange(32000) / 16000
    sf.write(path, (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 16000)
    return path


def _err(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _no_model_loading(monkeypatch):
    """The checks under test come before loading: loading fails the test."""
    from tts import synthesize
    monkeypatch.setattr(synthesize.Synthesizer, "from_pretrained",
                        classmethod(lambda *a, **k: pytest.fail("models loaded before the arguments were checked")))


@pytest.mark.parametrize("bad_id,words", [("../../escape", "cannot be a file name"), ("a/b", "cannot be a file name"),
                                          ("/tmp/abs", "cannot be a file name"), (".hidden", "cannot be a file name"),
                                          ("", "cannot be a file name")])
def test_list_ids_that_are_not_plain_file_names_are_refused(tmp_path, monkeypatch, capsys, bad_id, words):
    from tts.synthesize import main
    _no_model_loading(monkeypatch)
    monkeypatch.chdir(tmp_path)
    _prompt(tmp_path / "p.wav")
    row = {"id": bad_id, "text": "Hello.", "prompt_wav": "p.wav", "prompt_text": "a prompt"}
    (tmp_path / "list.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert main(["--list", "list.jsonl", "--out-dir", "a/b/out"]) == 2
    msg = _err(capsys)
    assert words in msg and "list.jsonl:1" in msg
    assert not (tmp_path / "escape.wav").exists() and not (tmp_path / "a" / "b" / "out").exists()


def test_duplicate_ids_are_refused(tmp_path, monkeypatch, capsys):
    from tts.synthesize import main
    _no_model_loading(monkeypatch)
    monkeypatch.chdir(tmp_path)
    _prompt(tmp_path / "p.wav")
    rows = [{"id": "x", "text": t, "prompt_wav": "p.wav", "prompt_text": "a prompt"} for t in ("One.", "Two.")]
    (tmp_path / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["--list", "list.jsonl", "--out-dir", "out"]) == 2
    assert "id 'x' is used again (first on line 1)" in _err(capsys)


@pytest.mark.parametrize("out,words", [("folder", "is a folder"), ("afile/out.wav", "afile is a file"),
                                       ("x.mp3", "cannot write .mp3"), ("noext", "cannot write a file without")])
def test_bad_out_is_refused_before_loading(tmp_path, monkeypatch, capsys, out, words):
    from tts.synthesize import main
    _no_model_loading(monkeypatch)
    monkeypatch.chdir(tmp_path)
    _prompt(tmp_path / "p.wav")
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    assert main(["--text", "Hi.", "--prompt-wav", "p.wav", "--prompt-text", "a prompt", "--out", out]) == 2
    assert words in _err(capsys)


def test_out_dir_under_a_file_is_refused(tmp_path, monkeypatch, capsys):
    from tts.synthesize import main
    _no_model_loading(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "list.jsonl").write_text(json.dumps({"text": "a", "prompt_wav": "p", "prompt_text": "b"}) + "\n")
    assert main(["--list", "list.jsonl", "--out-dir", "afile/out"]) == 2
    assert "afile is a file" in _err(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("dev,words", [("cuda", "CUDA is not available"), ("banana", "not a device name")])
def test_unavailable_device_is_refused_before_loading(tmp_path, monkeypatch, capsys, dev, words):
    from tts.synthesize import main
    _no_model_loading(monkeypatch)
    monkeypatch.chdir(tmp_path)
    _prompt(tmp_path / "p.wav")
    assert main(["--text", "Hi.", "--prompt-wav", "p.wav", "--prompt-text", "a prompt", "--device", dev]) == 2
    assert words in _err(capsys)


def test_a_mistyped_local_model_path_is_not_fetched_from_the_hub(exp, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from tts.synthesize import main
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("went to the Hub"))
    work = tmp_path / "recipe"
    shutil.copytree(exp, work / "exp")
    monkeypatch.chdir(work)
    _prompt(work / "p.wav")
    assert main(["--text", "Hi.", "--prompt-wav", "p.wav", "--prompt-text", "a prompt", "--ar", "exp/ar_typo"]) == 2
    assert "exp/ar_typo is not a directory" in _err(capsys)


@pytest.mark.parametrize("text,n", [("Dr. Smith paid $3.50 on 12/05/2024 at 10:30.", 1),
                                    ("Mr. Jones met Mrs. Brown at St. Paul's, i.e. ... 5 p.m.", 1),
                                    ("It was late. We left at 5 p.m. The end.", 3)])
def test_sentences_are_split_after_normalisation(syn, text, n):
    sents = syn._sentences(text, "t")
    assert len(sents) == n, sents
    assert "slash" not in " ".join(sents) and "/" not in " ".join(sents)


def test_unpronounceable_text_is_named_or_refused(syn, caplog):
    from tts.synthesize import SynthesisError
    with caplog.at_level(logging.WARNING, logger="tts.synthesize"):
        assert syn._sentences("Hello 你好 world 😀.", "item 3") == ["Hello world."]
    assert "item 3: not pronounceable" in caplog.text and "你好" in caplog.text and "😀" in caplog.text
    with pytest.raises(SynthesisError, match="nothing in the text can be read.*مرحبا"):
        syn._sentences("مرحبا 😀", "item 4")


def test_long_text_is_refused_and_progress_is_logged(syn, monkeypatch, caplog):
    from tts.synthesize import SynthesisError
    with pytest.raises(SynthesisError, match="text has 5000 words; the limit is 1000"):
        syn._sentences("word " * 5000, "synthesize")
    monkeypatch.setenv("NDVQ_PROGRESS", "log")
    t = np.arange(32000) / 16000
    wav = (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="ndvq.progress"):
        syn.synthesize_batch([{"text": "One. Two. Three.", "prompt_wav": wav, "prompt_sr": 16000,
                               "prompt_text": "a prompt"}], seed=0, batch_size=1)
    lines = [r.getMessage() for r in caplog.records if r.name == "ndvq.progress"]
    assert lines and lines[-1].startswith("synthesize: 3/3 sentence")


def test_a_model_of_an_older_normaliser_gets_text_normalised_as_it_was_trained():
    from data_prep.frontend import TextFrontend
    fe = TextFrontend.from_record({"language": "en-us", "with_stress": True, "normalizer_version": "2"}, "old model")
    assert fe.settings.normalizer_version == "2" and "December" not in fe.normalize("12/05/2024")
