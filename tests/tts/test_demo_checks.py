"""The demo without a server: port and device checked before loading models, temp files bounded and
removed, refused input shown without server paths or tracebacks, outputs cleared before a request."""
from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from tts import demo as demo_mod  # noqa: E402
from tts.demo import DemoBackend, DemoLimits, _guard, build_demo, check_port, scrub_paths  # noqa: E402


def _no_models(monkeypatch):
    monkeypatch.setattr(demo_mod, "DemoBackend", lambda *a, **k: pytest.fail("models loaded before the checks"))


def test_a_port_in_use_is_one_line_before_loading_models(tmp_path, monkeypatch, capsys):
    _no_models(monkeypatch)
    (tmp_path / "model").mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"127.0.0.1:{port}.*in use"):
            check_port("127.0.0.1", port)
        with pytest.raises(SystemExit) as e:
            demo_mod.main(["--codec", str(tmp_path / "model"), "--port", str(port)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot listen on") and "--port" in err[0]


@pytest.mark.parametrize("dev", ["banana", "cuda"])
def test_an_unavailable_device_is_refused_before_loading_models(tmp_path, monkeypatch, capsys, dev):
    import torch
    if dev == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _no_models(monkeypatch)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SystemExit) as e:
        demo_mod.main(["--codec", str(tmp_path), "--port", str(port), "--device", dev])
    assert e.value.code == 2 and f"--device {dev}" in capsys.readouterr().err


def test_temp_folder_is_bounded_and_removed_on_close():
    b = DemoBackend.__new__(DemoBackend)
    b.limits = DemoLimits(max_temp_files=5)
    b.tmp = Path(tempfile.mkdtemp(prefix="ndvq-demo-test-"))
    made = [b._out(".wav") for _ in range(20)]
    left = sorted(b.tmp.iterdir())
    assert len(left) == 5 and made[-1] in left
    b.close()
    assert not b.tmp.exists()


def test_refused_input_shows_no_server_path_and_no_traceback():
    import gradio as gr

    from data_prep.audio import AudioError

    def handler(path):
        raise AudioError(path, "cannot read audio (format not recognised)")

    with pytest.raises(gr.Error) as e:
        _guard(handler)("/tmp/gradio/5f0c9e/upload.wav")
    assert e.value.message == "upload.wav: cannot read audio (format not recognised)"
    assert e.value.print_exception is False
    assert scrub_paths("C:\\Users\\me\\a.wav and 3/4") == "a.wav and 3/4"


class _FakeBackend:
    synth = None
    synth_error = "no model"
    limits = DemoLimits()
    choices = {"0.40 kbps (1 codebook)": 1}

    def synthesize(self, *a):
        raise ValueError("x")

    def codec_roundtrip(self, *a):
        raise ValueError("x")


def test_every_request_first_clears_the_previous_output():
    demo = build_demo(_FakeBackend())
    fns = list(demo.fns.values())
    for api in ("synthesize", "codec"):
        main = next(f for f in fns if f.api_name == api)
        before = [f for f in fns if f is not main and [o._id for o in f.outputs] == [o._id for o in main.outputs]]
        assert len(before) == 1, api
        assert all(v is None for v in before[0].fn())               # the clearing step empties every output
        assert main.trigger_after == before[0]._id                 # and the request runs after it
    demo.close()


@pytest.mark.parametrize("tab", ["tts", "codec"])
def test_an_overlong_upload_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch, tab):
    """A small FLAC of a long stretch of silence was decoded whole by the TTS tab before
    its length was checked (memory and CPU); both tabs now read the header and refuse first."""
    import gradio as gr
    import numpy as np
    import soundfile as sf

    import data_prep.audio as audio_mod
    path = tmp_path / "silence.flac"
    sf.write(path, np.zeros((48000 * 120, 2), np.float32), 48000)     # 2 min of stereo silence, a few KB
    assert path.stat().st_size < 200_000
    monkeypatch.setattr(audio_mod, "load_audio", lambda *a, **k: pytest.fail("decoded before the length check"))
    b = DemoBackend.__new__(DemoBackend)
    b.limits = DemoLimits(max_prompt_seconds=6, max_codec_seconds=60)
    b.synth, b.choices = object(), {"x": 1}
    with pytest.raises(gr.Error, match=r"is 120.0 s long; it must be"):
        if tab == "tts":
            b.synthesize(str(path), "what it says", "Hello.", 1.0, 25, 0.8, 0)
        else:
            b.codec_roundtrip(str(path), "x")


def test_sigterm_takes_the_ctrl_c_path_and_temp_files_live_in_one_private_folder(monkeypatch):
    """The demo cleans up on SIGTERM (the live check is tests/tts/test_demo.py::test_sigterm_leaves_no_temp_files)."""
    import os
    import signal
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)
    for k in ("TMPDIR", "GRADIO_TEMP_DIR"):
        monkeypatch.setenv(k, os.environ.get(k, ""))
    root = demo_mod.private_temp_root()
    try:
        assert Path(tempfile.mkdtemp()).parent == root and os.environ["GRADIO_TEMP_DIR"].startswith(str(root))
        old = signal.signal(signal.SIGTERM, demo_mod.sigterm_as_ctrl_c)
        try:
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
        finally:
            signal.signal(signal.SIGTERM, old)
    finally:
        import shutil
        shutil.rmtree(root, ignore_errors=True)


def test_scrubbing_server_paths_keeps_relative_paths_whole():
    """"egs/libritts/run.sh" became "egsrun.sh" in the page."""
    assert scrub_paths("the recipe (egs/libritts/run.sh stages 5-6)") == "the recipe (egs/libritts/run.sh stages 5-6)"
    assert scrub_paths("see ./exp/ar/model") == "see ./exp/ar/model"
    assert scrub_paths("'/tmp/gradio/x/up.wav': bad") == "'up.wav': bad"
