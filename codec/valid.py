"""The codec's evaluation during training: mel distance and pitch per bandwidth on a few dev utterances.

`CodecEval(run, cfg)` loads the first `data.valid_items` utterances of `data.valid_manifests` (capped
at EVAL_MAX_SECONDS) on the main process and tracks their F0 once; calling it at a step writes one line
to exp_dir/eval.jsonl, the distances, the pitch scores and decoded examples (audio and mel images) to
TensorBoard under eval/, and a log line. Pitch (codec.evaluation.pitch: Praat tracks of output and
recording, pooled over the items): median F0 error in cents on frames voiced in both, gross pitch error
(GPE), voicing decision error (VDE); tracking costs about 10 ms per second of audio.
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import torch

from core.io import append_jsonl

from .config import CodecConfig
from .data import load_eval_set
from .evaluation.pitch import row_pitch, tracks
from .losses import mel_distance

log = logging.getLogger(__name__)

EVAL_MAX_SECONDS = 4.0


def mel_image(wav: torch.Tensor, sample_rate: int) -> np.ndarray:
    """A log-mel spectrogram as a [1, H, W] image in [0, 1] (low frequencies at the bottom)."""
    from .models.spectral import MelSpectrogram, log_mel
    m = log_mel(MelSpectrogram(sample_rate, 1024, 256, 80)(wav.reshape(1, -1).float()))[0]
    m = (m - m.min()) / (m.max() - m.min() + 1e-8)
    return m.flip(0)[None].numpy()


PITCH_LOGGED = ("cents_median", "gpe", "vde")


@torch.no_grad()
def evaluate_codec(model, items: list[tuple[str, torch.Tensor]], bandwidths, sample_rate: int,
                   device="cpu", ref_f0: Optional[list[np.ndarray]] = None
                   ) -> tuple[dict[float, float], dict, dict[float, dict]]:
    """Mean mel distance over `items` (wav [1, 1, T]) at each bandwidth (eval mode: the codes' means),
    the first item decoded at each bandwidth ([T]), and with `ref_f0` (the items' F0 tracks) each
    bandwidth's pooled pitch scores (codec.evaluation.pitch.row_pitch)."""
    was_training = model.training
    model.eval()
    result, examples, pitch = {}, {}, {}
    for bw in bandwidths:
        n_q = model.n_q_for_bandwidth(bw)
        dists, outs = [], []
        for i, (_, wav) in enumerate(items):
            wav = wav.to(device)
            out = model(wav, n_q)
            dists.append(float(mel_distance(out.audio, wav, sample_rate)))
            if ref_f0 is not None:
                outs.append(out.audio[0, 0, : wav.shape[-1]].float().cpu().numpy())
            if i == 0:
                examples[bw] = out.audio[0, 0].float().cpu()
        result[bw] = float(np.mean(dists)) if dists else float("nan")
        if ref_f0 is not None:
            pitch[bw] = row_pitch(ref_f0, tracks(outs, sample_rate))
    model.train(was_training)
    return result, examples, pitch


class CodecEval:
    """The evaluation of one run (`run`: core.training.TrainingRun); runs on the main process only."""

    def __init__(self, run, cfg: CodecConfig) -> None:
        self.run, self.cfg = run, cfg
        self.items = (load_eval_set(cfg.data.valid_manifests, cfg.sample_rate, cfg.data.valid_items,
                                    EVAL_MAX_SECONDS) if run.main and cfg.data.valid_manifests else [])
        self.ref_f0 = tracks([w[0, 0].numpy() for _, w in self.items], cfg.sample_rate) if self.items else None

    def __call__(self, model, at_step: int) -> dict:
        """{bandwidth: mel distance} of `model` at `at_step` (empty on other ranks or without items)."""
        run, cfg = self.run, self.cfg
        if not run.main or not self.items:
            return {}
        res, examples, pitch = evaluate_codec(model, self.items, cfg.bandwidths, cfg.sample_rate, run.device,
                                              self.ref_f0)
        logged = {f"eval/mel_distance_{bw:g}kbps": v for bw, v in res.items()}
        logged.update({f"eval/f0_{k}_{bw:g}kbps": p[k] for bw, p in pitch.items() for k in PITCH_LOGGED
                       if np.isfinite(p[k])})
        run.accelerator.log(logged, step=at_step)
        self._write_audio(at_step, examples)
        append_jsonl(run.exp_dir / "eval.jsonl", {
            "step": at_step, "mel_distance": {f"{bw:g}": v for bw, v in res.items()},
            "pitch": {f"{bw:g}": {k: p[k] for k in PITCH_LOGGED + ("voiced_both",)} for bw, p in pitch.items()}})
        log.info("eval step %d: %s", at_step, ", ".join(
            f"{bw:g} kbps mel {v:.4f}" + (f" F0 {pitch[bw]['cents_median']:.0f} c GPE {pitch[bw]['gpe']:.2f} "
                                          f"VDE {pitch[bw]['vde']:.2f}" if bw in pitch else "")
            for bw, v in res.items()))
        return res

    def _write_audio(self, at_step: int, examples: dict) -> None:
        """The reference once a run (a marker file remembers it across resumes), the decoded examples."""
        writer, sr, marker = self.run.writer, self.cfg.sample_rate, self.run.exp_dir / ".eval_ref_written"
        if at_step == 0 or not marker.exists():
            ref = self.items[0][1][0, 0]
            writer.add_audio("eval/reference", ref.numpy(), at_step, sr)
            writer.add_image("eval/reference_mel", mel_image(ref, sr), at_step)
            marker.touch()
        for bw, wav in examples.items():
            writer.add_audio(f"eval/decoded_{bw:g}kbps", wav.clamp(-1, 1).numpy(), at_step, sr)
            writer.add_image(f"eval/decoded_{bw:g}kbps_mel", mel_image(wav, sr), at_step)
