"""Discriminator forward + backward: channels-last activations (the default) vs contiguous NCHW.

    python benchmarks/bench_discriminator_layout.py [--crops 32] [--seconds 0.5] [--repeats 3]

Interleaved repeats in one process after one warm-up of each. The contiguous variant is obtained by
making `Tensor.contiguous(memory_format=...)` ignore its format during the call, which undoes the one
layout line in codec/models/discriminator.py. Writes benchmarks/results/discriminator_layout.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import codec.train  # noqa: E402,F401  (the thread settings training uses)
import torch  # noqa: E402

from codec.config import DiscriminatorConfig  # noqa: E402
from codec.models.discriminator import MultiScaleSTFTDiscriminator  # noqa: E402

_contiguous = torch.Tensor.contiguous


def step(disc, x, channels_last: bool) -> float:
    if not channels_last:
        torch.Tensor.contiguous = lambda self, memory_format=torch.contiguous_format: _contiguous(self)
    try:
        disc.zero_grad(set_to_none=True)
        t = time.perf_counter()
        logits, feats = disc(x)
        loss = sum(lg.mean() for lg in logits) + sum(f.abs().mean() for fs in feats for f in fs)
        loss.backward()
        return time.perf_counter() - t
    finally:
        torch.Tensor.contiguous = _contiguous


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--crops", type=int, default=32, help="batch (a D update sees real + fake: 2 x 16)")
    p.add_argument("--seconds", type=float, default=0.5)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(DiscriminatorConfig())
    x = torch.randn(a.crops, 1, int(a.seconds * 24000)) * 0.1
    times = {True: [], False: []}
    for layout in (True, False):
        step(disc, x, layout)
    for _ in range(a.repeats):
        for layout in (True, False):
            times[layout].append(step(disc, x, layout))
    cl, nchw = statistics.median(times[True]), statistics.median(times[False])
    res = {"crops": a.crops, "seconds": a.seconds, "repeats": a.repeats, "threads": torch.get_num_threads(),
           "channels_last_s": cl, "contiguous_s": nchw, "speedup": nchw / cl, "all_s": {"channels_last": times[True],
                                                                                      "contiguous": times[False]}}
    out = ROOT / "benchmarks" / "results" / "discriminator_layout"
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    md = (f"# Discriminator layout (5-scale STFT D, forward + backward, {a.crops} x {a.seconds} s, "
          f"{res['threads']} threads, median of {a.repeats} interleaved)\n\n"
          f"| layout | seconds |\n|---|---|\n| channels-last (default) | {cl:.2f} |\n| contiguous NCHW | {nchw:.2f} |\n\n"
          f"Speed-up: {res['speedup']:.2f}x. Command: `python benchmarks/bench_discriminator_layout.py`.\n")
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
