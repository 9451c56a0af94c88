"""Codec training step time with 1 and with every intra-op thread, alternating in one process.

    python benchmarks/bench_train_threads.py [--config egs/libritts/conf/codec_mini.yaml] [--steps 6] [--rounds 2]

Why: `accelerate launch` gives a single CPU process OMP_NUM_THREADS=1 unless it is passed
--num_cpu_threads_per_process, so the recipe's training stages used one core of two (run.sh's launch()
now passes every core). One step = generator forward, mel + time + quantizer losses, backward, AdamW, on
a random batch of the config's shape (data loading not included). Rounds alternate 1 thread / all
threads so both see the same load; the load average is printed because the cores are usually shared.
Writes benchmarks/results/train_threads.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "egs/libritts/conf/codec_mini.yaml"))
    p.add_argument("--steps", type=int, default=6, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    import codec.train  # noqa: F401  (sets training's OpenMP waiting before torch loads)
    import torch
    from codec.build import build_codec, build_mel_loss
    from codec.config import CodecConfig
    from core.config import load_config
    from core.runtime import usable_cores

    cfg = load_config(CodecConfig, [args.config])
    torch.manual_seed(0)
    model = build_codec(cfg)
    cfg = model.config
    mel = build_mel_loss(cfg)
    wav = 0.1 * torch.randn(cfg.data.batch_size, 1, int(cfg.data.segment_seconds * cfg.sample_rate))
    opt = torch.optim.AdamW(model.parameters(), cfg.optim.lr)
    n_q = cfg.quantizer.n_q

    def step() -> None:
        out = model(wav, n_q)
        loss = (out.audio - wav).abs().mean() + mel(out.audio, wav) + out.quant_loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    cores = usable_cores()
    times: dict[int, list[float]] = {1: [], cores: []}
    for _ in range(args.rounds):
        for n in times:
            torch.set_num_threads(n)
            step()                                   # warm-up (k-means init on the first, oneDNN set-up)
            t = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[n].append((time.perf_counter() - t) / args.steps)
    load = os.getloadavg()[0]
    rows = [f"| {n} | {' / '.join(f'{x:.3f}' for x in v)} | {min(times[1]) / min(v):.2f}x |" for n, v in times.items()]
    md = "\n".join([
        "# Codec training step: 1 intra-op thread vs every core", "",
        f"`python benchmarks/bench_train_threads.py --config {Path(args.config).name}`, batch "
        f"{cfg.data.batch_size} x {cfg.data.segment_seconds} s, {n_q} stages; load average {load:.2f} at the end.", "",
        "| threads | s / step (each round) | speed vs 1 thread (best rounds) |", "|---|---|---|", *rows, ""])
    out = ROOT / "benchmarks/results/train_threads.md"
    out.write_text(md)
    print(md)


if __name__ == "__main__":
    main()
