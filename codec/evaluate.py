"""Mel distance of a codec checkpoint on held-out manifest audio at given bandwidths.

    python -m codec.evaluate --checkpoint exp/codec_mini/model --manifest data/valid.jsonl \
        --bandwidths 1.5 6 --max-items 30 [--out result.json]

`--checkpoint` is an exported model directory or a training checkpoint directory (both hold
config.json + model.safetensors). Audio goes through the model in eval mode (the codes' means), each
utterance capped at `--max-seconds`. Prints (and optionally writes) a JSON object.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from .data import load_eval_set
from .train import evaluate_codec
from .utils.checkpoint import load_codec


def evaluate(checkpoint: str | Path, manifests: list[str], bandwidths: list[float], max_items: int = 30,
             max_seconds: float | None = 10.0) -> dict:
    model = load_codec(checkpoint)
    items = load_eval_set(manifests, model.sample_rate, max_items, max_seconds)
    res, _ = evaluate_codec(model, items, bandwidths, model.sample_rate)
    return {"checkpoint": str(checkpoint), "items": len(items),
            "mel_distance": {f"{bw:g}": v for bw, v in res.items()},
            "n_q": {f"{bw:g}": model.n_q_for_bandwidth(bw) for bw in bandwidths}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="mel distance of a codec at given bandwidths")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--manifest", action="append", required=True)
    p.add_argument("--bandwidths", type=float, nargs="+", default=[1.5, 6.0])
    p.add_argument("--max-items", type=int, default=30)
    p.add_argument("--max-seconds", type=float, default=10.0)
    p.add_argument("--out", help="also write the JSON here")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    torch.set_grad_enabled(False)
    result = evaluate(a.checkpoint, a.manifest, a.bandwidths, a.max_items, a.max_seconds)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
