"""Mel distance of codec checkpoints on held-out manifest audio at given bandwidths.

    python -m codec.evaluate --checkpoint exp/codec/model --manifest data/manifests/test-clean.jsonl \
        --bandwidths 1.5 6 --max-items 30 [--out exp/codec/eval]
    python -m codec.evaluate --exp-dir exp/codec --manifest ...      (its model/ and first checkpoint)

`--checkpoint` (repeatable) is an exported model directory or a training checkpoint directory (both
hold config.json + model.safetensors). `--exp-dir` scores a training run's exported `model/` against
its first saved checkpoint, so a run shows how far it moved. Audio goes through the model in eval mode
(the codes' means), each utterance capped at `--max-seconds`; the metric is codec.losses.mel_distance
(mean L1 between log10 80-bin mel spectrograms, n_fft 1024). The last checkpoint also gets a breakdown
of where its error comes from (`diagnose`: unquantized and zero latents, per-stage code usage and
residuals). `--out PREFIX` writes PREFIX.json and a table PREFIX.md.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from .data import load_eval_set
from .losses import mel_distance
from .quantization.base import usage_metrics
from .train import evaluate_codec
from .utils.checkpoint import list_checkpoints, load_codec, load_codec_config
from .utils.io import atomic_write_text

log = logging.getLogger("codec.evaluate")


def evaluate(checkpoint: str | Path, manifests: list[str], bandwidths: list[float], max_items: int = 30,
             max_seconds: float | None = 10.0, with_diagnostics: bool = False) -> dict:
    model = load_codec(checkpoint)
    items = load_eval_set(manifests, model.sample_rate, max_items, max_seconds)
    res, _ = evaluate_codec(model, items, bandwidths, model.sample_rate)
    out = {"checkpoint": str(checkpoint), "items": len(items),
           "mel_distance": {f"{bw:g}": v for bw, v in res.items()},
           "n_q": {f"{bw:g}": model.n_q_for_bandwidth(bw) for bw in bandwidths}}
    if with_diagnostics:
        out["diagnostics"] = diagnose(model, items, model.sample_rate)
    return out


@torch.no_grad()
def diagnose(model, items: list[tuple[str, torch.Tensor]], sample_rate: int) -> dict:
    """Where a codec's error comes from, on `items` (eval mode, all n_q stages).

    - `mel_unquantized`: the decoder fed the encoder's latent as it is; if the codes score the same,
      the quantizer costs nothing and the autoencoder is the bottleneck.
    - `mel_zero_latent`: the decoder fed zeros (a floor that knows nothing of the input).
    - per stage: codes used (of codebook_size), perplexity (exp of the code entropy), and the RMS of the
      residual left after the stage relative to the latent's RMS.
    """
    model.eval()
    mel_unq, mel_zero, codes, resid = [], [], [], []
    for _, wav in items:
        scale = model.rms_scale(wav)
        z = model.encoder(wav / scale[:, :, None])
        n = wav.shape[-1]
        for out, latent in ((mel_unq, z), (mel_zero, torch.zeros_like(z))):
            y = model.decoder(latent)[..., :n] * scale[:, :, None]
            out.append(float(mel_distance(y, wav, sample_rate)))
        c = model.quantizer.encode(z)                              # [1, n_q, T]
        codes.append(c[0])
        r, norms = z, [z.pow(2).mean().sqrt()]
        for k, layer in enumerate(model.quantizer.layers):
            r = r - layer.decode(c[0, k]).T[None]
            norms.append(r.pow(2).mean().sqrt())
        resid.append(torch.stack(norms))
    codes_all = torch.cat(codes, dim=1)                            # [n_q, frames]
    rel = torch.stack(resid).mean(0)
    stages = []
    for k in range(codes_all.shape[0]):
        use = usage_metrics(codes_all[k], model.codebook_size, "s")      # the metrics training logs
        stages.append({"stage": k + 1, "codes_used": model.codebook_size - int(use["s/unused"]),
                       "perplexity": float(use["s/perplexity"]), "residual_rms_rel": float(rel[k + 1] / rel[0])})
    return {"mel_unquantized": float(np.mean(mel_unq)), "mel_zero_latent": float(np.mean(mel_zero)),
            "codebook_size": model.codebook_size, "stages": stages}


def run_checkpoints(exp_dir: str | Path) -> list[Path]:
    """A training run's first checkpoint and its exported model, in that order."""
    exp_dir = Path(exp_dir)
    model = exp_dir / "model"
    if not (model / "model.safetensors").is_file():
        raise FileNotFoundError(f"{exp_dir}: no exported model (model/model.safetensors); train first")
    ckpts = list_checkpoints(exp_dir)
    return ([ckpts[0]] if ckpts else []) + [model]


def _step_of(checkpoint: Path) -> str:
    if checkpoint.name.startswith("step-"):
        return str(int(checkpoint.name.split("-")[1]))
    summary = checkpoint.parent / "train_summary.json"
    if summary.is_file():
        return str(json.loads(summary.read_text()).get("step", "?"))
    return "?"


def markdown_table(results: list[dict], manifests: list[str]) -> str:
    bws = list(results[0]["mel_distance"])
    head = "| checkpoint | step | " + " | ".join(f"{bw} kbps (n_q {results[0]['n_q'][bw]})" for bw in bws) + " |"
    lines = [f"# Codec mel distance on {', '.join(manifests)} ({results[0]['items']} utterances)", "",
             "Mean L1 between log10 mel spectrograms (80 bins, n_fft 1024); lower is better.", "",
             head, "|" + "---|" * (len(bws) + 2)]
    for r in results:
        cells = " | ".join(f"{r['mel_distance'][bw]:.4f}" for bw in bws)
        lines.append(f"| {r['checkpoint']} | {r['step']} | {cells} |")
    for r in results:
        d = r.get("diagnostics")
        if not d:
            continue
        lines += ["", f"## Where the error comes from ({r['checkpoint']}, all stages)", "",
                  f"Decoder fed the unquantized latent: {d['mel_unquantized']:.4f}; decoder fed zeros: "
                  f"{d['mel_zero_latent']:.4f}. If the codes score like the unquantized latent, the quantizer "
                  "costs nothing at this point and the encoder/decoder is the bottleneck.", "",
                  f"| stage | codes used (of {d['codebook_size']}) | perplexity | residual RMS / latent RMS |",
                  "|---|---|---|---|"]
        lines += [f"| {st['stage']} | {st['codes_used']} | {st['perplexity']:.1f} | {st['residual_rms_rel']:.4f} |"
                  for st in d["stages"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", action="append", help="model or checkpoint directory (repeatable)")
    src.add_argument("--exp-dir", help="training run: score its model/ against its first checkpoint")
    p.add_argument("--manifest", action="append", required=True)
    p.add_argument("--bandwidths", type=float, nargs="+", default=None,
                   help="kbps (default: the codec's 1.5 and 6 if offered, else its inference bandwidths)")
    p.add_argument("--max-items", type=int, default=30)
    p.add_argument("--max-seconds", type=float, default=10.0)
    p.add_argument("--out", help="write OUT.json and OUT.md")
    p.add_argument("--no-diagnostics", action="store_true",
                   help="skip the error breakdown of the last checkpoint (unquantized / zero latent, code usage)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_grad_enabled(False)
    checkpoints = [Path(c) for c in a.checkpoint] if a.checkpoint else run_checkpoints(a.exp_dir)
    bandwidths = a.bandwidths
    if bandwidths is None:
        offered = list(load_codec_config(checkpoints[-1]).bandwidths)
        bandwidths = [bw for bw in (1.5, 6.0) if bw in offered] or offered
    results = []
    for ckpt in checkpoints:
        r = evaluate(ckpt, a.manifest, bandwidths, a.max_items, a.max_seconds,
                     with_diagnostics=ckpt == checkpoints[-1] and not a.no_diagnostics)
        r["step"] = _step_of(ckpt)
        log.info("%s (step %s): %s", ckpt, r["step"],
                 ", ".join(f"{bw} kbps {v:.4f}" for bw, v in r["mel_distance"].items()))
        results.append(r)
    text = json.dumps(results, indent=2)
    print(text)
    if a.out:
        atomic_write_text(f"{a.out}.json", text + "\n")
        atomic_write_text(f"{a.out}.md", markdown_table(results, a.manifest))


if __name__ == "__main__":
    main()
