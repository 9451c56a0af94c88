"""The Gradio demo against a live local server (tiny random codec + AR + NAR): gradio_client calls
and a real headless Chromium driven by selenium."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 420          # seconds; gradio's import and start-up are slow on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wav(path: Path, seconds: float, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    w = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    sf.write(path, w.astype(np.float32), sr)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.tts.helpers_models import tiny_exp
    tmp = tmp_path_factory.mktemp("demo")
    exp = tiny_exp(tmp)
    port = _free_port()
    log = open(tmp / "server.log", "w")
    systmp = tmp / "systmp"          # the server's system temp folder: empty again after SIGTERM
    systmp.mkdir()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(REPO), "TMPDIR": str(systmp)}
    env.pop("GRADIO_TEMP_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "tts.demo", "--exp-dir", str(exp), "--port", str(port),
                             "--max-text-chars", "120", "--max-prompt-seconds", "6", "--threads", "1"],
                            cwd=tmp, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.time()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"demo exited with {proc.returncode}:\n{(tmp / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() - t0 > START_TIMEOUT:
                pytest.fail(f"demo did not answer within {START_TIMEOUT} s:\n{(tmp / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield {"url": url, "tmp": tmp, "log": tmp / "server.log", "port": port, "proc": proc, "systmp": systmp}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.slow
def test_demo_binds_localhost_and_serves_synthesis_and_codec(server):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from codec.bitstream import read_ndvq
    tmp = server["tmp"]
    # bound to the loopback address only (the default without --host)
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True) if shutil.which("ss") else None
    if out is not None and out.returncode == 0:
        lines = [ln for ln in out.stdout.splitlines() if f":{server['port']} " in ln + " "]
        assert lines and all("127.0.0.1:" in ln for ln in lines), lines
    client = Client(server["url"], verbose=False)
    prompt = _wav(tmp / "prompt.wav", 2.0)

    wav_path, info = client.predict(handle_file(str(prompt)), "hello there", "A short test.", 1.0, 25, 0.8, 3,
                                    api_name="/synthesize")
    audio, sr = sf.read(wav_path)
    assert sr == 16000 and len(audio) > 0 and "of audio in" in info and "seed 3" in info

    orig, rec, spec, cinfo, ndvq = client.predict(handle_file(str(prompt)), "0.50 kbps (2 codebooks)",
                                                  api_name="/codec")
    cf = read_ndvq(ndvq)
    assert cf.num_codebooks == 2 and cf.num_frames == 100
    assert f"{Path(ndvq).stat().st_size:,} bytes" in cinfo and "kbps actual" in cinfo
    r, rsr = sf.read(rec)
    assert rsr == 16000 and len(r) == 32000 and Path(spec).stat().st_size > 1000

    # limits: clear messages, and the server keeps serving afterwards
    with pytest.raises(AppError, match="Text is 200 characters; the limit is 120"):
        client.predict(handle_file(str(prompt)), "hello there", "x" * 200, 1.0, 25, 0.8, 0, api_name="/synthesize")
    long_prompt = _wav(tmp / "long.wav", 8.0)
    with pytest.raises(AppError, match="Prompt is 8.0 s long"):
        client.predict(handle_file(str(long_prompt)), "hello", "Hi.", 1.0, 25, 0.8, 0, api_name="/synthesize")
    with pytest.raises(AppError, match="Unknown bitrate '99 kbps'"):
        client.predict(handle_file(str(prompt)), "99 kbps", api_name="/codec")
    again, _ = client.predict(handle_file(str(prompt)), "hello there", "Still here.", 0.0, 0, 1.0, 1,
                              api_name="/synthesize")
    assert Path(again).is_file()


def _chrome():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no chromium/chromedriver on PATH (scripts/setup_env.sh installs them with apt where it can)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1280,900"):
        opts.add_argument(flag)
    opts.binary_location = chromium
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.mark.slow
def test_demo_in_a_headless_browser(server):
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    prompt = _wav(server["tmp"] / "browser_prompt.wav", 2.0)
    d = _chrome()
    try:
        d.get(server["url"])
        wait = WebDriverWait(d, 180)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tts_text textarea"))
        assert not d.find_elements(By.CSS_SELECTOR, "#tts_output audio")
        d.find_elements(By.CSS_SELECTOR, "input[type=file]")[0].send_keys(str(prompt))
        d.find_element(By.CSS_SELECTOR, "#prompt_text textarea").send_keys("hello there")
        d.find_element(By.CSS_SELECTOR, "#tts_text textarea").send_keys("A browser test.")
        # the upload has landed when the prompt shows a player
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "audio")) >= 1)
        d.find_element(By.CSS_SELECTOR, "#synthesize").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tts_output audio"))
        wait.until(lambda d: "s of audio in" in d.find_element(By.CSS_SELECTOR, "#tts_info").text)
        shot = os.environ.get("NDVQ_DEMO_SCREENSHOT")     # e.g. docs/demo.png when refreshing the README
        if shot:
            d.save_screenshot(shot)
    finally:
        d.quit()


@pytest.mark.slow
def test_sigterm_leaves_no_temp_files(server):
    """Stopped by SIGTERM (as services are), the demo left its temp folder, every upload in
    Gradio's cache (refused ones included) and copies of libespeak-ng.so in the system temp folder."""
    import signal

    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    tmp = server["tmp"]
    client = Client(server["url"], verbose=False)
    with pytest.raises(AppError, match="Prompt is 8.0 s long"):
        client.predict(handle_file(str(_wav(tmp / "long8.wav", 8.0))), "hello", "Hi.", 1.0, 25, 0.8, 0,
                       api_name="/synthesize")
    big = tmp / "big.wav"                                          # over the 10 MB upload cap: Gradio refuses it
    sf.write(big, np.zeros(16000 * 400, np.float32), 16000)
    with pytest.raises(Exception):
        client.predict(handle_file(str(big)), "hello", "Hi.", 1.0, 25, 0.8, 0, api_name="/synthesize")
    assert any(server["systmp"].iterdir())                       # the server's files were there while it ran
    proc = server["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    left = sorted(str(p.relative_to(server["systmp"])) for p in server["systmp"].rglob("*"))
    assert left == [], left
    assert "Traceback" not in server["log"].read_text()
