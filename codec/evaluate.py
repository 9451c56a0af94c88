"""Mel distance of codec checkpoints on held-out manifest audio at given bandwidths.

    python -m codec.evaluate --checkpoint exp/codec/model --manifest data/manifests/test-clean.jsonl \
        --bandwidths 1.5 6 --max-items 30 [--out exp/codec/eval]
    python -m codec.evaluate --exp-dir exp/codec --manifest ...      (its model/ and first checkpoint)

`--checkpoint` (repeatable) is an exported model directory or a training checkpoint directory (both
hold config.json + model.safetensors). `--exp-dir` scores a training run's exported `model/` against
its first saved checkpoint, so a run shows how far it moved. Audio goes through the model in eval mode
(the codes' means), each utterance capped at `--max-seconds`; the metric is codec.losses.mel_distance
(mean L1 between log10 80-bin mel spectrograms, n_fft 1024). `--out PREFIX` writes PREFIX.json and a
table PREFIX.md.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from .data import load_eval_set
from .train import evaluate_codec
from .utils.checkpoint import list_checkpoints, load_codec, load_codec_config
from .utils.io import atomic_write_text

log = logging.getLogger("codec.evaluate")


def evaluate(checkpoint: str | Path, manifests: list[str], bandwidths: list[float], max_items: int = 30,
             max_seconds: float | None = 10.0) -> dict:
    model = load_codec(checkpoint)
    items = load_eval_set(manifests, model.sample_rate, max_items, max_seconds)
    res, _ = evaluate_codec(model, items, bandwidths, model.sample_rate)
    return {"checkpoint": str(checkpoint), "items": len(items),
            "mel_distance": {f"{bw:g}": v for bw, v in res.items()},
            "n_q": {f"{bw:g}": model.n_q_for_bandwidth(bw) for bw in bandwidths}}


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
        r = evaluate(ckpt, a.manifest, bandwidths, a.max_items, a.max_seconds)
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
