"""Gradio demo: zero-shot TTS and the NDVQ codec in a browser.

    python -m tts.demo                              # the recipe's models: egs/libritts/exp/{codec,ar,nar}/model
    python -m tts.demo --exp-dir exp --port 7860    # or --codec DIR --ar DIR --nar DIR; --host 0.0.0.0 to share

Tabs:
* Zero-shot TTS: a prompt recording (upload or microphone) and its transcript, the text to speak,
  sampling controls and a seed -> the speech and the time it took. Examples come from the recipe's
  stage-7 list (exp/synth/list.jsonl) when it exists.
* Codec: an upload, a bitrate -> original and reconstruction with their spectrograms, the .ndvq
  file's size and actual bitrate, and the .ndvq file to download.

Serving: binds 127.0.0.1 unless --host says otherwise; a queue runs --concurrency requests at a time
(the models are CPU-bound; more at once only slows each); text length, prompt length, codec input
length and upload size are limited (DemoLimits) with messages that say which limit was hit; any
failing request becomes an error message in the page (the previous output is cleared first; server
paths are shown as file names; a refused input is one log line, not a traceback) and the server keeps
serving. An upload's length is checked from its header, before it is decoded (both tabs, one check). A
port already in use or an unavailable --device is an error before any model loads. Outputs live in one
temporary folder that keeps the newest DemoLimits.max_temp_files files; Gradio's cache of uploads and
every other temporary file of the process (e.g. the espeak library's copies) live in the same private
folder, removed on shutdown by Ctrl+C or SIGTERM alike; Gradio's cache is also emptied of files older
than an hour.
"""
from __future__ import annotations

import argparse
import atexit
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .demo_temp import private_temp_root, release_temp_users, sigterm_as_ctrl_c
from .limits import MAX_PROMPT_SECONDS, MIN_PROMPT_SECONDS, DefaultsHelp

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


@dataclass
class DemoLimits:
    max_text_chars: int = 400
    min_prompt_seconds: float = MIN_PROMPT_SECONDS
    max_prompt_seconds: float = MAX_PROMPT_SECONDS
    max_codec_seconds: float = 60.0
    max_upload_mb: float = 10.0
    max_temp_files: int = 60          # outputs kept in the demo's temp folder (4 per codec request)


# an absolute path: at the start or after a space, quote or bracket (a relative path such as
# egs/libritts/run.sh is kept whole)
_PATH_RE = re.compile(r"(?<![^\s'\"(\[=])(?:[A-Za-z]:)?(?:[\\/][^\s\\/'\"]+)+[\\/]([^\s\\/'\":]+)")


def scrub_paths(msg: str) -> str:
    """A message for the page: every absolute path (an upload's server-side temp path) shown as its file name."""
    return _PATH_RE.sub(lambda m: m.group(1), msg)


def _refuse(msg: str):
    """A gr.Error for bad input: shown in the page, one line in the server log, no traceback."""
    import gradio as gr
    log.info("refused: %s", scrub_paths(msg))
    return gr.Error(scrub_paths(msg), print_exception=False)


def check_port(host: str, port: int) -> None:
    """ValueError in one line if (host, port) cannot be bound (in use, or not an address of this machine)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)    # as the server does: TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError as e:
            raise ValueError(f"cannot listen on {host}:{port} ({e.strerror or e}); "
                             f"{'another program uses it: ' if e.errno == 98 else ''}choose another with --port") from e


def check_upload_seconds(path: str, lo: float, hi: float, what: str) -> tuple[float, int]:
    """(seconds, sample rate) of an upload from its header, before any decoding, refused outside [lo, hi]:
    a small compressed file of hours of audio costs nothing to refuse."""
    from data_prep.audio import audio_info
    frames, sr, _ = audio_info(path)
    dur = frames / sr if sr > 0 else float("inf")
    if dur < lo or dur > hi:
        raise _refuse(f"{what} is {dur:.1f} s long; it must be {lo:g}-{hi:g} s"
                      + (" (3 s of clean speech works best)." if what == "Prompt" else "."))
    return dur, sr


def default_exp_dir() -> Path:
    """./exp when it holds a codec (run from egs/libritts), else the recipe's egs/libritts/exp (as synthesis)."""
    from .checkpoint import default_exp_dir as default
    return default()


class DemoBackend:
    """What the handlers call: a codec (always) and a Synthesizer (when its models load)."""

    def __init__(self, codec_dir: Path, ar_dir: Optional[Path], nar_dir: Optional[Path], exp_dir: Path,
                 limits: DemoLimits = DemoLimits(), device: str = "cpu"):
        from codec.api import Codec
        self.limits = limits
        self.tmp = Path(tempfile.mkdtemp(prefix="ndvq-demo-"))
        atexit.register(self.close)
        self.codec = Codec.from_pretrained(codec_dir, device=device)
        self.codec_dir = codec_dir
        self.synth = None
        self.synth_error: Optional[str] = None
        try:
            from .synthesizer import Synthesizer
            self.synth = Synthesizer.from_pretrained(codec=codec_dir, ar=ar_dir, nar=nar_dir, device=device,
                                                     exp_dir=exp_dir)
        except Exception as e:  # the codec tab still works without a TTS
            self.synth_error = f"{type(e).__name__}: {e}"
            log.warning("TTS models not loaded (%s); the TTS tab will say so", self.synth_error)
        self.choices = self._bitrates()

    def _bitrates(self) -> dict[str, int]:
        """Dropdown label -> n_q, one entry per distinct number of codebooks."""
        c = self.codec
        n_qs = sorted({c.resolve_n_q(bandwidth=b) for b in c.bandwidths} | {c.n_q})
        return {f"{c.kbps(n):.2f} kbps ({n} codebook{'s' if n > 1 else ''})": n for n in n_qs}

    def _out(self, suffix: str) -> Path:
        """A new output file; the oldest ones beyond limits.max_temp_files are deleted (the page has
        long loaded them: Gradio serves its own copy)."""
        files = sorted((p for p in self.tmp.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
        for old in files[: max(0, len(files) - self.limits.max_temp_files + 1)]:
            old.unlink(missing_ok=True)
        fd, name = tempfile.mkstemp(suffix=suffix, dir=self.tmp)
        os.close(fd)
        return Path(name)

    def close(self) -> None:
        """Remove the temporary folder (also at interpreter exit)."""
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------------------ handlers
    def synthesize(self, prompt_path: Optional[str], prompt_text: str, text: str, temperature: float,
                   top_k: float, top_p: float, seed: Optional[float]):
        import gradio as gr

        from data_prep.audio import load_audio, save_audio
        from .sampling import SamplingConfig
        lim = self.limits
        if self.synth is None:
            raise _refuse(f"No TTS model is loaded ({self.synth_error}). Train one with the recipe "
                           f"(egs/libritts/run.sh stages 5-6) or pass --ar/--nar.")
        text = (text or "").strip()
        prompt_text = (prompt_text or "").strip()
        if not text:
            raise _refuse("Enter the text to speak.")
        if len(text) > lim.max_text_chars:
            raise _refuse(f"Text is {len(text)} characters; the limit is {lim.max_text_chars}.")
        if len(prompt_text) > lim.max_text_chars:
            raise _refuse(f"Prompt transcript is {len(prompt_text)} characters; the limit is {lim.max_text_chars}.")
        if not prompt_path:
            raise _refuse("Upload or record a prompt: a few seconds of the voice to imitate.")
        if not prompt_text:
            raise _refuse("Enter the prompt's transcript (what is said in the prompt recording).")
        check_upload_seconds(prompt_path, lim.min_prompt_seconds, lim.max_prompt_seconds, "Prompt")
        wav, sr = load_audio(prompt_path)
        sampling = SamplingConfig(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p))
        seed = None if seed is None or int(seed) < 0 else int(seed)
        t0 = time.time()
        res = self.synth.synthesize(text, wav, prompt_text, prompt_sr=sr, sampling=sampling, seed=seed)
        wall = time.time() - t0
        out = self._out(".wav")
        save_audio(out, res.audio, res.sample_rate)
        audio_s = len(res.audio) / res.sample_rate
        info = (f"**{audio_s:.2f} s** of audio in **{wall:.2f} s** (real-time factor {wall / max(audio_s, 1e-6):.2f}); "
                f"seed {res.seed}; stop: {', '.join(res.stops) or 'n/a'}")
        return str(out), info

    def codec_roundtrip(self, path: Optional[str], choice: str):
        import gradio as gr

        from codec.bitstream import actual_kbps, encode_bytes, write_ndvq
        from data_prep.audio import load_audio, save_audio
        lim = self.limits
        if not path:
            raise _refuse("Upload an audio file.")
        if choice not in self.choices:
            raise _refuse(f"Unknown bitrate {choice!r}; choose one of: {', '.join(self.choices)}.")
        check_upload_seconds(path, 0.0, lim.max_codec_seconds, "Audio")
        n_q = self.choices[choice]
        cf = self.codec.encode_file(path, n_q=n_q)
        ndvq = self._out(".ndvq")
        write_ndvq(ndvq, cf)
        size = ndvq.stat().st_size
        recon = np.concatenate(list(self.codec.decode_codefile(cf, source=str(ndvq))))
        rec_path = self._out(".wav")
        save_audio(rec_path, recon, self.codec.sample_rate)
        orig, osr = load_audio(path)
        spec = self._spectrograms(orig, osr, recon, self.codec.sample_rate)
        kbps = actual_kbps(encode_bytes(cf), cf.duration)
        info = (f"{cf.duration:.2f} s, {cf.num_codebooks} codebooks x {cf.num_frames} frames at "
                f"{self.codec.frame_rate:g} Hz; **.ndvq file: {size:,} bytes, {kbps:.3f} kbps actual** "
                f"(nominal {self.codec.kbps(n_q):.2f} kbps; header and CRC included)")
        return path, str(rec_path), str(spec), info, str(ndvq)

    def _spectrograms(self, a: np.ndarray, sra: int, b: np.ndarray, srb: int) -> Path:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from codec.evaluation.metrics import log_mel_spectrogram
        fig, axes = plt.subplots(1, 2, figsize=(10, 2.8), sharey=True)
        for ax, (title, w, sr) in zip(axes, (("original", a, sra), ("reconstruction", b, srb))):
            m = log_mel_spectrogram(w, sr)
            ax.imshow(m, origin="lower", aspect="auto", cmap="magma", vmin=m.max() - 5, vmax=m.max(),
                      extent=[0, len(w) / sr, 0, m.shape[0]])
            ax.set_title(title)
            ax.set_xlabel("s")
        axes[0].set_ylabel("mel bin")
        fig.tight_layout()
        out = self._out(".png")
        fig.savefig(out, dpi=72)
        plt.close(fig)
        return out


def _guard(fn: Callable) -> Callable:
    """Turn any exception into a gr.Error (shown in the page); the server keeps serving."""
    import functools

    import gradio as gr

    from data_prep.audio import AudioError

    @functools.wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except gr.Error:
            raise
        except (ValueError, OSError, AudioError) as e:   # SynthesisError, BitstreamError, ...: the input
            raise _refuse(str(e)) from None
        except Exception as e:
            log.exception("request failed")
            raise _refuse(f"internal error ({type(e).__name__}: {scrub_paths(str(e))})") from e
    return wrapped


def _clear(n: int) -> Callable:
    def clear():
        return (None,) * n
    return clear


def _examples(exp_dir: Path, n: int = 3) -> list[list[str]]:
    lst = exp_dir / "synth" / "list.jsonl"
    if not lst.is_file():
        return []
    from core.io import path_from_file, read_jsonl
    rows = [{**r, "prompt_wav": path_from_file(r.get("prompt_wav", ""), lst.parent)} for r in read_jsonl(lst)]
    rows = [r for r in rows if Path(r["prompt_wav"]).is_file()]
    return [[r["prompt_wav"], r["prompt_text"], r["text"]] for r in rows[:n]]


def build_demo(backend: DemoBackend, exp_dir: Optional[Path] = None):
    import gradio as gr
    lim = backend.limits
    # Gradio keeps its own copy of every output: delete those older than an hour, checked hourly
    with gr.Blocks(title="NDVQ zero-shot TTS and codec", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# NDVQ: zero-shot TTS and neural codec\nVALL-E-style TTS on the codes of a codec "
                    "with normal-distribution vector quantization.")
        with gr.Tab("Zero-shot TTS"):
            if backend.synth is None:
                gr.Markdown(f"**No TTS model loaded**: {backend.synth_error}")
            with gr.Row():
                with gr.Column():
                    prompt = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                      label=f"Prompt: the voice to imitate ({lim.min_prompt_seconds:g}-"
                                            f"{lim.max_prompt_seconds:g} s; about 3 s is best)")
                    prompt_text = gr.Textbox(label="Prompt transcript", lines=1, elem_id="prompt_text")
                    text = gr.Textbox(label=f"Text to speak (up to {lim.max_text_chars} characters)", lines=3,
                                      elem_id="tts_text")
                    with gr.Accordion("Sampling", open=False):
                        temperature = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="temperature (0 = greedy)")
                        top_k = gr.Slider(0, 100, value=25, step=1, label="top-k (0 = off)")
                        top_p = gr.Slider(0.05, 1.0, value=0.8, step=0.05, label="top-p")
                        seed = gr.Number(value=0, precision=0, label="seed (-1 = random)")
                    go = gr.Button("Synthesize", variant="primary", elem_id="synthesize")
                with gr.Column():
                    out_audio = gr.Audio(label="Output", type="filepath", elem_id="tts_output")
                    out_info = gr.Markdown(label="info", elem_id="tts_info")
            ex = _examples(exp_dir) if exp_dir else []
            if ex:
                gr.Examples(ex, [prompt, prompt_text, text], label="Test-set prompts (unseen speakers)")
            # clear the previous output first, so a failing request does not leave it on screen
            go.click(_clear(2), None, [out_audio, out_info], queue=False, api_visibility="private").then(
                _guard(backend.synthesize), [prompt, prompt_text, text, temperature, top_k, top_p, seed],
                [out_audio, out_info], api_name="synthesize")
        with gr.Tab("Codec"):
            with gr.Row():
                c_in = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                label=f"Audio (up to {lim.max_codec_seconds:g} s, {lim.max_upload_mb:g} MB)")
                with gr.Column():
                    names = list(backend.choices)
                    # any value reaches the handler, which refuses an unknown one in one log line (Gradio's
                    # own check would write a traceback to the server log)
                    rate = gr.Dropdown(names, value=names[0], label="Bitrate", allow_custom_value=True)
                    c_go = gr.Button("Encode and decode", variant="primary", elem_id="codec_go")
            with gr.Row():
                c_orig = gr.Audio(label="Original", type="filepath", interactive=False)
                c_rec = gr.Audio(label="Reconstruction", type="filepath", interactive=False)
            c_spec = gr.Image(label="spectrograms", type="filepath", interactive=False)
            c_info = gr.Markdown(label="info", elem_id="codec_info")
            c_file = gr.File(label="ndvq file")
            gr.Markdown("Decode a downloaded file with `python -m codec decode FILE.ndvq out.wav --model DIR`.")
            c_go.click(_clear(5), None, [c_orig, c_rec, c_spec, c_info, c_file], queue=False,
                       api_visibility="private").then(
                _guard(backend.codec_roundtrip), [c_in, rate], [c_orig, c_rec, c_spec, c_info, c_file],
                api_name="codec")
    return demo


def launch(demo, host: str, port: Optional[int], limits: DemoLimits, concurrency: int = 1,
           queue_size: int = 16, block: bool = True):
    demo.queue(default_concurrency_limit=max(1, concurrency), max_size=queue_size)
    return demo.launch(server_name=host, server_port=port, max_file_size=f"{limits.max_upload_mb:g}mb",
                       prevent_thread_lock=not block, show_error=True, ssr_mode=False, quiet=False)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tts.demo", description="Gradio demo: zero-shot TTS and codec.",
                                 formatter_class=DefaultsHelp)
    ap.add_argument("--exp-dir", default=None, help="recipe exp dir (default ./exp if it has a codec, "
                                                     "else egs/libritts/exp)")
    ap.add_argument("--codec", default=None, help="codec dir (default EXP/codec/model)")
    ap.add_argument("--ar", default=None, help="AR model dir (default EXP/ar/model)")
    ap.add_argument("--nar", default=None, help="NAR model dir (default EXP/nar/model)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=7860, help="port to listen on")
    ap.add_argument("--concurrency", type=int, default=1, help="requests processed at once (queue)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    d = DemoLimits()
    ap.add_argument("--max-text-chars", type=int, default=d.max_text_chars, help="text and prompt transcript")
    ap.add_argument("--max-prompt-seconds", type=float, default=d.max_prompt_seconds,
                    help=f"prompt length (at least {d.min_prompt_seconds:g} s)")
    ap.add_argument("--max-codec-seconds", type=float, default=d.max_codec_seconds, help="codec tab input length")
    ap.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="any upload")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")
    a = ap.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")   # no network calls from the server
    from core.logs import setup_logging
    setup_logging()
    try:                                  # before minutes of loading models
        check_port(a.host, a.port)
        from codec.api import check_device
        check_device(a.device)
    except ValueError as e:
        ap.exit(2, f"error: {e}\n")
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
    exp = Path(a.exp_dir) if a.exp_dir else default_exp_dir()
    codec_dir = Path(a.codec) if a.codec else exp / "codec" / "model"
    if not codec_dir.is_dir():
        ap.error(f"no codec at {codec_dir}: run the recipe (egs/libritts/run.sh) or pass --codec DIR")
    limits = DemoLimits(max_text_chars=a.max_text_chars, max_prompt_seconds=a.max_prompt_seconds,
                        max_codec_seconds=a.max_codec_seconds, max_upload_mb=a.max_upload_mb)
    root = private_temp_root()
    signal.signal(signal.SIGTERM, sigterm_as_ctrl_c)
    try:
        backend = DemoBackend(codec_dir, Path(a.ar) if a.ar else None, Path(a.nar) if a.nar else None, exp,
                              limits, device=a.device)
        launch(build_demo(backend, exp), a.host, a.port, limits, a.concurrency)
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        release_temp_users(root)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
