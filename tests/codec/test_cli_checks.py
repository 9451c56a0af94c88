"""python -m codec refuses bad arguments in one line, before any work: colliding outputs, bandwidths
out of range, devices this machine does not have, mistyped local model paths."""
import numpy as np
import pytest
import soundfile as sf
import torch

from codec.__main__ import main
from codec.api import check_device
from core.hub import is_hub_id
from tests.codec.helpers_inference import noise, one_thread, tiny_codec  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_checks")
    codec = tiny_codec(seed=4)
    codec.save_pretrained(tmp / "model")
    (tmp / "in").mkdir()
    sf.write(tmp / "in" / "solo.wav", noise(16000, seed=1).numpy(), 16000)
    return tmp, codec


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_folder_inputs_that_map_to_one_output_are_refused_before_any_work(setup, capsys):
    tmp, _ = setup
    src = tmp / "clash"
    src.mkdir()
    sf.write(src / "p.flac", noise(8000, seed=1).numpy(), 16000)
    sf.write(src / "p.wav", noise(8000, seed=2).numpy(), 16000)
    out = tmp / "clash_out"
    assert main(["roundtrip", str(src), str(out), "--model", str(tmp / "model")]) == 1
    msg = _one_error_line(capsys)
    assert "p.flac" in msg and "p.wav" in msg and "more than one input" in msg
    assert not out.exists()


def test_output_over_its_input_is_refused(setup, capsys):
    tmp, _ = setup
    f = tmp / "in" / "solo.wav"
    before = f.read_bytes()
    assert main(["roundtrip", str(f), str(f), "--model", str(tmp / "model")]) == 1
    assert "overwrite the input" in _one_error_line(capsys)
    assert f.read_bytes() == before


@pytest.mark.parametrize("bw", ["100", "0", "-1"])
def test_bandwidth_out_of_range_is_refused_not_clamped(setup, capsys, bw):
    tmp, codec = setup
    out = tmp / f"bw{bw}.ndvq"
    assert main(["encode", str(tmp / "in" / "solo.wav"), str(out), "--model", str(tmp / "model"),
                 "--bandwidth", bw]) == 1
    msg = _one_error_line(capsys)
    assert f"--bandwidth {float(bw):g} is outside" in msg and "kbps" in msg
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("dev,words", [("cuda", "CUDA is not available"), ("banana", "not a device name")])
def test_unavailable_device_is_one_line(setup, capsys, dev, words):
    tmp, _ = setup
    assert main(["encode", str(tmp / "in" / "solo.wav"), str(tmp / "d.ndvq"), "--model", str(tmp / "model"),
                 "--device", dev]) == 1
    assert words in _one_error_line(capsys)


def test_check_device_accepts_cpu():
    assert check_device("cpu") == torch.device("cpu") and check_device(None) == torch.device("cpu")


def test_mistyped_local_path_is_not_a_hub_id(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp").mkdir()
    assert not is_hub_id("exp/ar_typo") and not is_hub_id("./x/y") and not is_hub_id("a/b/c")
    assert is_hub_id("someone/ndvq-mini")
    sf.write(tmp_path / "a.wav", noise(8000, seed=1).numpy(), 16000)
    assert main(["encode", "a.wav", "a.ndvq", "--model", "exp/codec_typo"]) == 1
    assert "codec: exp/codec_typo is not a directory" in _one_error_line(capsys)


@pytest.mark.parametrize("damage, words", [
    ("truncate", "model.safetensors cannot be read"),
    ("shapes", "does not fit the model its config describes"),
    ("json", "config.json: not valid JSON"),
    ("tts", "holds an AR model, not a codec"),
])
def test_damaged_or_foreign_codec_folder_is_one_line(setup, tmp_path, capsys, damage, words):
    """A truncated model.safetensors, weights of other shapes, a broken config.json or a
    folder of another kind was a traceback or 'unknown key ... for CodecConfig'."""
    import json
    import shutil
    tmp, _ = setup
    model = tmp_path / "model"
    shutil.copytree(tmp / "model", model)
    w = model / "model.safetensors"
    if damage == "truncate":
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif damage == "shapes":
        tiny_codec(seed=0, codebook_size=64).save_pretrained(tmp_path / "other")
        shutil.copy(tmp_path / "other" / "model.safetensors", w)
    elif damage == "json":
        (model / "config.json").write_text("{")
    else:
        (model / "config.json").write_text(json.dumps({"part": "ar", "model": {}}))
    assert main(["encode", str(tmp / "in" / "solo.wav"), str(tmp_path / "o.ndvq"), "--model", str(model)]) == 1
    msg = _one_error_line(capsys)
    assert words in msg and str(model) in msg
