"""Cost of the phase-aware and spectral generator terms on the mini codec: one training step per variant, in one process.

    python benchmarks/bench_codec_phase_losses.py [--rounds 6] [--threads 1]

Variants (codec_mini.yaml + the loss terms of codec/train.py, each with its weights on):
    base      mel + time + quantizer (today's mini config)
    phase     + IP / GD / IAF losses on the iSTFT head's phase (codec/losses/phase.py PhaseLoss)
    complex   + compressed complex multi-resolution STFT loss (CompressedComplexLoss)
    stft      + multi-resolution linear STFT loss (spectral convergence + log magnitude)
    gan       + MS-STFT discriminator: generator adversarial + feature terms, and one D update a step
The variants run round-robin (round r runs every variant once) on the same random batches, so a
load change on a shared machine hits them alike; the time is the process CPU time of a step
(forward, losses, backward, AdamW), the median over rounds, and the ratio to `base` is what to read.
Writes benchmarks/results/codec_phase_losses.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "base": {},
    "phase": {"phase_ip": 0.5, "phase_gd": 0.5, "phase_iaf": 0.5},
    "complex": {"complex": 0.5},
    "stft": {"stft": 0.5},
    "gan": {"disc_start": 0, "disc_every": 1},
}


# long: one measurement protocol (variants trained in turn, then scored and tabled), read top to bottom
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/codec_phase_losses"))
    a = p.parse_args()
    import codec.train as T   # first: sets training's OpenMP waiting before torch loads
    import torch
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    from codec.build import build_codec, build_discriminator, build_mel_loss, build_stft_loss
    from codec.config import CodecConfig
    from codec.losses import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss
    from core.config import load_config

    base = load_config(CodecConfig, [ROOT / "egs/libritts/conf/codec_mini.yaml"])
    runs = {}
    for name, kw in VARIANTS.items():
        cfg = replace(base, loss=replace(base.loss, **kw))
        torch.manual_seed(0)
        model = build_codec(cfg)
        disc = build_discriminator(cfg)
        runs[name] = dict(cfg=cfg, model=model, disc=disc, mel=build_mel_loss(cfg), stft=build_stft_loss(cfg),
                          phase=T.build_phase_loss(cfg, model), complex=T.build_complex_loss(cfg),
                          opts=T.build_optimizers(model, disc, cfg.optim), times=[], gen=[])
    lc0 = base.loss
    n = int(base.data.segment_seconds * base.sample_rate)
    n_q = base.n_q_for_bandwidth(max(base.train.bandwidths))

    def step(r: dict, wav: torch.Tensor) -> tuple[float, float]:
        cfg, model, disc = r["cfg"], r["model"], r["disc"]
        lc = cfg.loss
        opt_g, opt_d = r["opts"]
        t0 = time.process_time()
        out = model(wav, n_q)
        loss = lc.time * (out.audio - wav).abs().mean() + lc.mel * r["mel"](out.audio, wav) + lc.quant * out.quant_loss
        if r["stft"] is not None:
            loss = loss + lc.stft * r["stft"](out.audio, wav)
        if r["phase"] is not None:
            head = model.decoder.post[-1]
            (_, ph), head.last_spectrum = head.last_spectrum, None
            t = r["phase"](ph, wav)
            loss = loss + lc.phase_ip * t["ip"] + lc.phase_gd * t["gd"] + lc.phase_iaf * t["iaf"]
        if r["complex"] is not None:
            loss = loss + lc.complex * r["complex"](out.audio, wav)
        gan = lc.disc_start == 0
        if gan:
            disc.requires_grad_(False)
            lg, ff = disc(out.audio)
            with torch.no_grad():
                _, rf = disc(wav)
            disc.requires_grad_(True)
            loss = loss + lc.adv * hinge_generator_loss(lg) + lc.feat * feature_matching_loss(rf, ff)
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        t1 = time.process_time()
        if gan:
            lg, _ = disc(torch.cat([wav, out.audio.detach()]))
            B = wav.shape[0]
            ld = hinge_discriminator_loss([x[:B] for x in lg], [x[B:] for x in lg])
            opt_d.zero_grad(set_to_none=True)
            ld.backward()
            opt_d.step()
        return time.process_time() - t0, t1 - t0

    load = [os.getloadavg()[0]]
    for i in range(a.rounds + 2):                  # 2 untimed warm-up rounds (k-means init, first calls)
        g = torch.Generator().manual_seed(i)
        wav = torch.randn(base.data.batch_size, 1, n, generator=g) * 0.05
        for name, r in runs.items():
            total, gen = step(r, wav)
            if i >= 2:
                r["times"].append(total)
                r["gen"].append(gen)
    load.append(os.getloadavg()[0])
    ref = statistics.median(runs["base"]["times"])
    rows = [{"variant": k, "cpu_s_per_step": statistics.median(r["times"]),
             "generator_cpu_s": statistics.median(r["gen"]),
             "ratio_to_base": statistics.median(r["times"]) / ref} for k, r in runs.items()]
    res = {"threads": a.threads, "rounds": a.rounds, "batch": base.data.batch_size,
           "segment_seconds": base.data.segment_seconds, "load_avg_start_end": load, "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    md = [f"# Mini codec training step: cost of the phase-aware and spectral loss terms ({a.threads} thread(s), batch "
          f"{base.data.batch_size} x {base.data.segment_seconds} s, median of {a.rounds} rounds, process CPU time)", "",
          "| variant | CPU s / step | of which generator | x base |", "|---|---|---|---|"]
    md += [f"| {r['variant']} | {r['cpu_s_per_step']:.3f} | {r['generator_cpu_s']:.3f} | {r['ratio_to_base']:.2f} |"
           for r in rows]
    md += ["", f"Load average at start / end: {load[0]:.2f} / {load[1]:.2f}. "
               "`gan` includes one discriminator update a step (disc_every=1); `python "
               "benchmarks/bench_codec_phase_losses.py` to reproduce.", ""]
    Path(a.out + ".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
