"""Codec training step time and peak memory on this machine (CPU unless CUDA is present).

    python benchmarks/bench_codec_train.py [--steps 5] [--paper-batch 2]

One step = generator forward + mel/time/quantizer losses + backward + Adam, plus (with --gan) the
discriminator pass. Peak memory: ru_maxrss of a fresh subprocess per config on CPU (so configs do not
inherit each other's peak), torch.cuda.max_memory_allocated on GPU. The paper config runs with a
smaller batch on CPU (stated in the table). Writes benchmarks/results/codec_train.json and .md.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(config: str, batch: int | None, steps: int, gan: bool) -> dict:
    import torch
    torch.set_flush_denormal(True)
    from codec.build import build_codec, build_discriminator, build_mel_loss
    from codec.config import CodecConfig
    from codec.losses import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss
    from codec.utils.config import load_config
    cfg = load_config(CodecConfig, [ROOT / f"egs/libritts/conf/codec_{config}.yaml"])
    if batch:
        cfg = replace(cfg, data=replace(cfg.data, batch_size=batch))
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model, disc, mel = build_codec(cfg).to(dev), build_discriminator(cfg).to(dev), build_mel_loss(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4)
    T = int(cfg.data.segment_seconds * cfg.sample_rate)
    n_q = cfg.n_q_for_bandwidth(max(cfg.train.bandwidths))
    times = []
    for i in range(steps + 1):                     # step 0 (k-means init) is not timed
        wav = torch.randn(cfg.data.batch_size, 1, T, device=dev) * 0.1
        t = time.perf_counter()
        out = model(wav, n_q)
        loss = (out.audio - wav).abs().mean() + mel(out.audio, wav) + out.quant_loss
        if gan:
            lg, ff = disc(out.audio)
            _, rf = disc(wav)
            loss = loss + hinge_generator_loss(lg) + feature_matching_loss(rf, ff)
        opt.zero_grad(); loss.backward(); opt.step()
        if gan:
            lg, _ = disc(torch.cat([wav, out.audio.detach()]))
            B = wav.shape[0]
            ld = hinge_discriminator_loss([x[:B] for x in lg], [x[B:] for x in lg])
            opt_d.zero_grad(); ld.backward(); opt_d.step()
        if dev == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() / 2 ** 20 if dev == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"config": config, "device": dev, "batch": cfg.data.batch_size, "segment_s": cfg.data.segment_seconds,
            "n_q": n_q, "gan": gan, "threads": torch.get_num_threads(),
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "step_s_median": sorted(times)[len(times) // 2], "step_s_min": min(times),
            "peak_mem_MiB": peak, "steps_timed": len(times)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--paper-batch", type=int, default=2, help="paper batch on CPU (the paper used 29 a GPU)")
    p.add_argument("--one", nargs=3, metavar=("CONFIG", "BATCH", "GAN"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(one(a.one[0], int(a.one[1]) or None, a.steps, a.one[2] == "1")))
        return
    rows = []
    for config, batch, gan in (("mini", 0, "0"), ("mini", 0, "1"), ("paper", a.paper_batch, "1")):
        out = subprocess.run([sys.executable, __file__, "--steps", str(a.steps), "--one", config, str(batch), gan],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    head = "| config | device | batch | crop s | n_q | GAN | params (M) | step s (median) | peak mem (MiB) |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['config']} | {r['device']} x{r['threads']} | {r['batch']} | {r['segment_s']} | {r['n_q']} | "
                     f"{'yes' if r['gan'] else 'no'} | {r['params_M']:.2f} | {r['step_s_median']:.3f} | {r['peak_mem_MiB']:.0f} |")
    md = "\n".join(lines)
    print(md)
    out = ROOT / "benchmarks/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "codec_train.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "codec_train.md").write_text("# Codec training step (CPU)\n\nPeak memory = max RSS of the process "
                                        f"(CPU). paper config at batch {a.paper_batch} (29 in the paper).\n\n" + md + "\n")


if __name__ == "__main__":
    main()
