"""Codec training step time and peak memory on this machine (CPU unless CUDA is present).

    python benchmarks/bench_codec_train.py [--steps 8] [--gan-steps 3] [--paper-batch 2]
                                           [--omp-wait-policy ACTIVE]

One step = generator forward + mel/time/quantizer losses + backward + Adam, plus (GAN rows) the
discriminator passes as codec/train.py does them (the fake pass without D weight gradients, the real
pass without a graph) and one D update; training updates D only every `disc_every` steps, so the
table also gives the generator step and the D update separately.
The untimed warm-up steps cover the k-means init (step 0) and oneDNN's first-call set-up (step 1).
Peak memory: ru_maxrss of a fresh subprocess per config on CPU (so configs do not inherit each
other's peak), torch.cuda.max_memory_allocated on GPU. The paper config runs with a smaller batch on
CPU (stated in the table). The load average is recorded because the cores are usually shared.
Writes benchmarks/results/codec_train.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

WARMUP_STEPS = 2
NOTES_HEADING = "## Notes"

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(config: str, batch: int | None, steps: int, gan: bool) -> dict:
    import codec.train  # noqa: F401  (first: sets training's OpenMP waiting before torch loads, see there)
    import torch
    torch.set_flush_denormal(True)
    from codec.build import build_codec, build_discriminator, build_mel_loss
    from codec.config import CodecConfig
    from codec.losses import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss
    from core.config import load_config
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
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    times, gen_times, disc_times = [], [], []
    load_before = os.getloadavg()[0]
    for i in range(steps + WARMUP_STEPS):
        wav = torch.randn(cfg.data.batch_size, 1, T, device=dev) * 0.1
        t = time.perf_counter()
        out = model(wav, n_q)
        loss = (out.audio - wav).abs().mean() + mel(out.audio, wav) + out.quant_loss
        if gan:                                  # as codec/train.py: no D weight grads, real pass without graph
            disc.requires_grad_(False)
            lg, ff = disc(out.audio)
            with torch.no_grad():
                _, rf = disc(wav)
            disc.requires_grad_(True)
            loss = loss + hinge_generator_loss(lg) + feature_matching_loss(rf, ff)
        opt.zero_grad(); loss.backward(); opt.step()
        sync()
        t_gen = time.perf_counter()
        if gan:
            lg, _ = disc(torch.cat([wav, out.audio.detach()]))
            B = wav.shape[0]
            ld = hinge_discriminator_loss([x[:B] for x in lg], [x[B:] for x in lg])
            opt_d.zero_grad(); ld.backward(); opt_d.step()
            sync()
        if i >= WARMUP_STEPS:
            end = time.perf_counter()
            times.append(end - t)
            gen_times.append(t_gen - t)
            disc_times.append(end - t_gen)
    median = lambda v: sorted(v)[len(v) // 2]      # noqa: E731
    peak = (torch.cuda.max_memory_allocated() / 2 ** 20 if dev == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"config": config, "device": dev, "batch": cfg.data.batch_size, "segment_s": cfg.data.segment_seconds,
            "n_q": n_q, "gan": gan, "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default"),
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "step_s_median": sorted(times)[len(times) // 2], "step_s_min": min(times),
            "step_s_all": [round(t, 4) for t in times],
            # with the GAN: the generator step (incl. D forward passes) and the D update, separately
            "gen_step_s_median": median(gen_times), "disc_update_s_median": median(disc_times),
            "disc_every": cfg.loss.disc_every,
            "peak_mem_MiB": peak, "steps_timed": len(times),
            "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=8, help="timed steps without the GAN")
    p.add_argument("--gan-steps", type=int, default=3, help="timed steps with the GAN (tens of seconds each)")
    p.add_argument("--paper-batch", type=int, default=2, help="paper batch on CPU (the paper used 29 a GPU)")
    p.add_argument("--omp-wait-policy", default=None,
                   help="OMP_WAIT_POLICY of the measured processes instead of codec/train.py's setting "
                        "(e.g. ACTIVE; unset GOMP_SPINCOUNT to get libgomp's default spinning, as before)")
    p.add_argument("--one", nargs=3, metavar=("CONFIG", "BATCH", "GAN"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(one(a.one[0], int(a.one[1]) or None, a.steps, a.one[2] == "1")))
        return
    rows = []
    env = dict(os.environ) if a.omp_wait_policy is None else dict(os.environ, OMP_WAIT_POLICY=a.omp_wait_policy)
    for config, batch, gan in (("mini", 0, "0"), ("mini", 0, "1"), ("paper", a.paper_batch, "1")):
        steps = a.gan_steps if gan == "1" else a.steps
        out = subprocess.run([sys.executable, __file__, "--steps", str(steps), "--one", config, str(batch), gan],
                             capture_output=True, text=True, check=True, env=env)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    head = ("| config | device | batch | crop s | n_q | GAN | params (M) | step s (median) | step s (min) | "
            "G step / D update s (median) | steps | OpenMP wait | load avg (before, after) | peak mem (MiB) |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        split = f"{r['gen_step_s_median']:.2f} / {r['disc_update_s_median']:.2f}" if r["gan"] else "-"
        lines.append(f"| {r['config']} | {r['device']} x{r['threads']} | {r['batch']} | {r['segment_s']} | {r['n_q']} | "
                     f"{'yes' if r['gan'] else 'no'} | {r['params_M']:.2f} | {r['step_s_median']:.3f} | "
                     f"{r['step_s_min']:.3f} | {split} | {r['steps_timed']} | {r['omp_wait_policy']}, spin {r['gomp_spincount']} | "
                     f"{r['loadavg_1min'][0]:.2f}, {r['loadavg_1min'][1]:.2f} | {r['peak_mem_MiB']:.0f} |")
    md = "\n".join(lines)
    print(md)
    out = ROOT / "benchmarks/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "codec_train.json").write_text(json.dumps(rows, indent=2) + "\n")
    md_path = out / "codec_train.md"
    # Hand-written analysis below a "## Notes" heading survives re-runs; the table is regenerated.
    notes = ""
    if md_path.exists() and NOTES_HEADING in md_path.read_text():
        notes = "\n" + NOTES_HEADING + md_path.read_text().split(NOTES_HEADING, 1)[1]
    md_path.write_text("# Codec training step (CPU)\n\nPeak memory = max RSS of the process "
                       f"(CPU). paper config at batch {a.paper_batch} (29 in the paper). "
                       f"Command: `python benchmarks/bench_codec_train.py`.\n\n" + md + "\n" + notes)


if __name__ == "__main__":
    main()
