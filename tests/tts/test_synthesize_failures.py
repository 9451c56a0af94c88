"""`python -m tts.synthesize` and model folders: a failed write loses
no other item and ends in one line; damaged or foreign model folders are one line naming the folder; huge
texts are refused by length before phonemisation; the default exp dir is the recipe's; --help shows defaults."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.tts.test_synthesize_inputs import _prompt       # a 2 s sine prompt

pytestmark = [pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
              pytest.mark.usefixtures("one_thread")]


def _one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_batch_write_failure_keeps_the_other_items_and_names_it(exp, tmp_path, capsys):
    from tts.synthesize import main
    _prompt(tmp_path / "p.wav")
    rows = [{"id": i, "text": "Hello.", "prompt_wav": str(tmp_path / "p.wav"), "prompt_text": "a test prompt"}
            for i in ("a", "b", "c")]
    (tmp_path / "l.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    (out / "b.wav").mkdir(parents=True)                   # b's write fails after its synthesis
    assert main(["--list", str(tmp_path / "l.jsonl"), "--out-dir", str(out), "--exp-dir", str(exp),
                 "--seed", "1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: 1 of 3 items failed (b)")
    assert (out / "a.wav").is_file() and (out / "c.wav").is_file()
    res = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert "cannot write" in res[1]["error"] and "b.wav" in res[1]["error"] and res[2]["wav"] == "c.wav"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]          # no temp file left


def test_single_write_failure_is_one_line(exp, tmp_path, capsys, monkeypatch):
    import data_prep.audio as audio
    from tts.synthesize import main
    _prompt(tmp_path / "p.wav")

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(audio, "save_audio", full_disk)
    assert main(["--text", "Hello.", "--prompt-wav", str(tmp_path / "p.wav"), "--prompt-text", "a test prompt",
                 "--out", str(tmp_path / "o.wav"), "--exp-dir", str(exp)]) == 2
    assert "No space left on device" in _one_error_line(capsys)


def _copy_exp(exp: Path, tmp: Path) -> Path:
    other = tmp / "exp"
    shutil.copytree(exp, other)
    return other


@pytest.mark.parametrize("damage, message", [
    ("truncate_ar", r"ar/model/model.safetensors cannot be read"),
    ("truncate_codec", r"codec/model/model.safetensors cannot be read"),
    ("nar_weights_in_ar", r"ar/model/model.safetensors does not fit the model its config describes"),
    ("broken_json", r"ar/model/config.json: not valid JSON"),
    ("codec_in_ar", r"ar/model holds a codec, not a TTS AR or NAR model|ar/model holds a codec, not"),
    ("ar_in_codec", r"codec/model holds an AR model, not a codec"),
    ("aligner_in_ar", r"ar/model holds an aligner model"),
])
def test_damaged_or_foreign_model_folders_are_one_line(exp, tmp_path, capsys, damage, message):
    from tts.synthesize import main
    other = _copy_exp(exp, tmp_path)
    ar, codec = other / "ar" / "model", other / "codec" / "model"
    if damage.startswith("truncate"):
        f = (ar if damage == "truncate_ar" else codec) / "model.safetensors"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif damage == "nar_weights_in_ar":
        shutil.copy(other / "nar" / "model" / "model.safetensors", ar / "model.safetensors")
    elif damage == "broken_json":
        (ar / "config.json").write_text('{"part": "ar", ')
    elif damage == "codec_in_ar":
        shutil.copy(codec / "config.json", ar / "config.json")
    elif damage == "ar_in_codec":
        shutil.copy(ar / "config.json", codec / "config.json")
    else:
        (ar / "config.json").write_text(json.dumps({"format": "ndvq-aligner", "version": 1}))
    _prompt(tmp_path / "p.wav")
    assert main(["--text", "Hello.", "--prompt-wav", str(tmp_path / "p.wav"), "--prompt-text", "a prompt",
                 "--out", str(tmp_path / "o.wav"), "--exp-dir", str(other)]) == 2
    import re
    assert re.search(message, _one_error_line(capsys))


def test_huge_texts_are_refused_by_length_before_phonemising(exp, tmp_path, monkeypatch, capsys):
    """A 10 MB prompt_text in a list cost 80 s of phonemisation before "phonemes > 1024"."""
    import data_prep.frontend as fe
    from tts.synthesize import main
    monkeypatch.setattr(fe.TextFrontend, "text_to_ids", lambda *a, **k: pytest.fail("phonemised"))
    _prompt(tmp_path / "p.wav")
    row = {"id": "a", "text": "Hello.", "prompt_wav": str(tmp_path / "p.wav"), "prompt_text": "word " * 200_000}
    (tmp_path / "l.jsonl").write_text(json.dumps(row) + "\n")
    assert main(["--list", str(tmp_path / "l.jsonl"), "--out-dir", str(tmp_path / "o"), "--exp-dir", str(exp)]) == 2
    assert "l.jsonl:1: prompt_text has 1,000,000 characters; the limit is 1,000" in _one_error_line(capsys)
    row.update(prompt_text="a prompt", text=123)
    (tmp_path / "l.jsonl").write_text(json.dumps(row) + "\n")
    assert main(["--list", str(tmp_path / "l.jsonl"), "--out-dir", str(tmp_path / "o"), "--exp-dir", str(exp)]) == 2
    assert "text must be a string, got int 123" in _one_error_line(capsys)          # not "text is empty"


def test_synthesizer_refuses_a_huge_text_without_spaces_before_phonemising(syn, monkeypatch):
    from tts.synthesize import SynthesisError
    monkeypatch.setattr(syn.frontend, "normalize", lambda *a: pytest.fail("normalised"))
    with pytest.raises(SynthesisError, match="text has 30,000 characters; the limit is 1000 words, 20,000"):
        syn.synthesize("x" * 30_000, np.zeros(16000, np.float32), "a prompt", prompt_sr=16000)


def test_relative_prompt_wav_above_the_list_folder_is_said(tmp_path, monkeypatch, caplog):
    from tts.synthesize import read_list
    _prompt(tmp_path / "p.wav")
    (tmp_path / "a" / "b").mkdir(parents=True)
    lst = tmp_path / "a" / "b" / "l.jsonl"
    lst.write_text(json.dumps({"id": "x", "text": "Hi.", "prompt_wav": "p.wav", "prompt_text": "t"}) + "\n")
    monkeypatch.chdir(tmp_path / "a")
    rows = read_list(lst)
    assert rows[0]["prompt_wav"] == str(tmp_path / "p.wav")
    assert f"relative prompt_wav paths were found from {tmp_path}" in caplog.text


def test_default_exp_dir_is_the_recipes_from_the_repo_root(tmp_path, monkeypatch):
    from tts.checkpoint import default_exp_dir
    monkeypatch.chdir(tmp_path)
    assert default_exp_dir() == Path(__file__).resolve().parents[2] / "egs" / "libritts" / "exp"
    (tmp_path / "exp" / "codec" / "model").mkdir(parents=True)
    assert default_exp_dir() == Path("exp")


def test_missing_models_suggest_exp_dir(tmp_path, capsys, monkeypatch):
    from tts.synthesize import main
    _prompt(tmp_path / "p.wav")
    assert main(["--text", "Hi.", "--prompt-wav", str(tmp_path / "p.wav"), "--prompt-text", "t",
                 "--out", str(tmp_path / "o.wav"), "--exp-dir", str(tmp_path / "nowhere")]) == 2
    assert "--exp-dir" in _one_error_line(capsys)


def test_help_shows_sampling_defaults_and_the_speed_range(capsys):
    from tts.synthesize import main
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for s in ("(default: 25)", "(default: 0.8)", "in [0.25, 4]", "(default: 1000)", "egs/libritts/exp"):
        assert s in out, s


def test_resuming_with_a_changed_model_shape_says_use_a_new_exp_dir(tmp_path):
    import torch

    from core.checkpoint import load_checkpoint, save_checkpoint
    save_checkpoint(tmp_path, 1, torch.nn.Linear(4, 3), None, {"a": 1}, {"step": 1})
    with pytest.raises(ValueError, match=r"shape changed since this checkpoint: train in a new exp_dir"):
        load_checkpoint(tmp_path / "checkpoints" / "step-00000001", torch.nn.Linear(4, 5))


def test_a_transcript_that_cannot_match_the_prompt_is_warned(syn, caplog):
    """A wrong prompt transcript changed the speaking rate silently."""
    t = np.arange(32000) / 16000
    wav = (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    long_text = "this transcript is far too long for two seconds of audio, " * 4
    for prompt_text, warned in (("a test prompt", False), ("Hi.", True), (long_text, True)):
        caplog.clear()
        syn.synthesize("Hello.", wav, prompt_text, prompt_sr=16000, seed=0)
        assert ("does the transcript match the recording" in caplog.text) == warned, prompt_text


def test_a_crash_in_a_later_batch_keeps_the_finished_items_records(exp, tmp_path, monkeypatch):
    """results.jsonl was written only at the end, so a crash lost every record."""
    from tts.synthesize import Synthesizer, main
    _prompt(tmp_path / "p.wav")
    rows = [{"id": i, "text": "Hello.", "prompt_wav": str(tmp_path / "p.wav"), "prompt_text": "a test prompt"}
            for i in ("a", "b")]
    (tmp_path / "l.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    real = Synthesizer.synthesize_batch

    def crash_on_b(self, items, **kw):
        if items[0]["id"] == "b":
            raise RuntimeError("out of memory")
        return real(self, items, **kw)
    monkeypatch.setattr(Synthesizer, "synthesize_batch", crash_on_b)
    with pytest.raises(RuntimeError):
        main(["--list", str(tmp_path / "l.jsonl"), "--out-dir", str(tmp_path / "o"), "--exp-dir", str(exp),
              "--batch-size", "1"])
    res = [json.loads(x) for x in (tmp_path / "o" / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in res] == ["a"] and (tmp_path / "o" / "a.wav").is_file()
