"""python -m codec: encode / decode / roundtrip, folders, corrupt and foreign .ndvq files."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.__main__ import main
from codec.bitstream import read_ndvq
from tests.codec.helpers_inference import noise, one_thread, tiny_codec  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    codec = tiny_codec(seed=4)
    codec.save_pretrained(tmp / "model")
    wavs = tmp / "in"
    (wavs / "a" / "b").mkdir(parents=True)
    sf.write(wavs / "one.wav", noise(16000, seed=1).numpy(), 16000)
    sf.write(wavs / "a" / "two.flac", noise(12345, seed=2).numpy(), 16000)
    sf.write(wavs / "a" / "b" / "three48k.wav", np.stack([noise(24000, seed=3).numpy()] * 2, 1), 48000)  # stereo 48 kHz
    return tmp, codec


def test_encode_decode_file(setup, capsys):
    tmp, codec = setup
    src, nd, out = tmp / "in" / "one.wav", tmp / "one.ndvq", tmp / "one_dec.wav"
    assert main(["encode", str(src), str(nd), "--model", str(tmp / "model"), "--n-q", "2", "-v"]) == 0
    text = capsys.readouterr().out
    assert "nominal 0.500 kbps" in text and "actual" in text
    cf = read_ndvq(nd)
    assert cf.codes.shape == (2, 50) and cf.num_samples == 16000 and cf.sample_rate == 16000
    ref = codec.encode(sf.read(src, dtype="float32")[0], n_q=2)
    assert np.array_equal(cf.codes, ref.item_codes(0).numpy())
    assert main(["decode", str(nd), str(out), "--model", str(tmp / "model")]) == 0
    wav, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and wav.shape == (16000,)
    expect = codec.decode(ref)[0, 0].numpy()
    np.testing.assert_allclose(wav, np.clip(expect, -1, 1), atol=2 / 32768)


def test_roundtrip_folder_mirrors_tree(setup):
    tmp, _ = setup
    out = tmp / "rt"
    assert main(["roundtrip", str(tmp / "in"), str(out), "--model", str(tmp / "model"), "--bandwidth", "1"]) == 0
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    assert got == ["a/b/three48k.wav", "a/two.wav", "one.wav"]
    assert sf.info(out / "a" / "b" / "three48k.wav").samplerate == 16000
    assert sf.info(out / "a" / "b" / "three48k.wav").frames == 8000     # 0.5 s at the codec rate
    nd = tmp / "nd"
    assert main(["encode", str(tmp / "in"), str(nd), "--model", str(tmp / "model")]) == 0
    assert sorted(p.relative_to(nd).as_posix() for p in nd.rglob("*.ndvq")) == [
        "a/b/three48k.ndvq", "a/two.ndvq", "one.ndvq"]
    dec = tmp / "dec"
    assert main(["decode", str(nd), str(dec), "--model", str(tmp / "model")]) == 0
    assert (dec / "a" / "two.wav").is_file()


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign", "empty"])
def test_corrupt_ndvq_clear_error_no_output(setup, damage, capsys):
    tmp, _ = setup
    nd = tmp / f"ok_{damage}.ndvq"
    assert main(["encode", str(tmp / "in" / "one.wav"), str(nd), "--model", str(tmp / "model")]) == 0
    data = bytearray(nd.read_bytes())
    if damage == "flip":
        data[60] ^= 0x40
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "foreign":
        data = bytearray(b"RIFF" + bytes(100))
    else:
        data = bytearray()
    bad = tmp / f"bad_{damage}.ndvq"
    bad.write_bytes(bytes(data))
    out = tmp / f"bad_{damage}.wav"
    capsys.readouterr()
    assert main(["decode", str(bad), str(out), "--model", str(tmp / "model")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and str(bad) in err
    assert {"flip": "checksum", "truncate": "truncated", "foreign": "not an .ndvq", "empty": "truncated"}[damage] in err
    assert not out.exists() and not list(tmp.glob(f".bad_{damage}.wav*"))


def test_foreign_codec_is_rejected(setup, capsys):
    tmp, _ = setup
    from codec.bitstream import CodeFile, write_ndvq
    nd = tmp / "other.ndvq"
    write_ndvq(nd, CodeFile(codes=np.zeros((2, 10), dtype=np.int64), sample_rate=24000, frame_rate=75.0,
                            codebook_size=1024, scale=1.0, num_samples=3200))
    assert main(["decode", str(nd), str(tmp / "other.wav"), "--model", str(tmp / "model")]) == 2
    assert "not decodable by this codec" in capsys.readouterr().err
    assert not (tmp / "other.wav").exists()


def test_subprocess_entry_point(setup):
    tmp, _ = setup
    r = subprocess.run([sys.executable, "-m", "codec", "decode", str(tmp / "nothing.ndvq"), str(tmp / "x.wav"),
                        "--model", str(tmp / "model")], cwd=ROOT, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert r.returncode == 1 and "no such file" in r.stderr
    bad = tmp / "junk.ndvq"
    bad.write_bytes(b"NDVQ\x01" + bytes(10))
    r = subprocess.run([sys.executable, "-m", "codec", "decode", str(bad), str(tmp / "junk.wav"),
                        "--model", str(tmp / "model")], cwd=ROOT, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2 and "truncated" in r.stderr and not (tmp / "junk.wav").exists()
