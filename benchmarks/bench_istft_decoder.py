"""SEANet decoder vs the iSTFT decoder head (codec/models/istft_decoder.py) on the mini config, CPU.

    python benchmarks/bench_istft_decoder.py [--steps 5] [--decode-reps 2] [--threads 1] [--variant NAME:k=v,k=v ...]

Per variant, all in one process and interleaved step by step (so a change of load on the shared
cores hits every variant alike):
- decoder step: the decoder alone, forward + backward of an L1 loss on a mini batch
  (16 x 0.5 s at 24 kHz -> latent [16, 64, 38], audio [16, 1, 12160]);
- generator step: what codec/train.py does per step without the GAN (encoder, quantizer at the
  largest training bandwidth, decoder, L1 + multi-scale mel + quantizer loss, backward, AdamW);
- decode: codec.api.Codec.decode of 10 s of codes (n_q 10, fp32), as x real time;
- forward GFLOP of the decoder (torch.utils.flop_counter; load-independent).
Times are CPU seconds of this process (time.process_time) at `--threads` (default 1), which a
shared, oversubscribed machine distorts far less than wall time (with 2 threads, CPU time adds
both threads' work and their short spin-waits); the minimum wall time is given too.
Random weights: the time of these layers does not depend on their values. The untimed warm-up steps
cover the k-means init and oneDNN's first-call set-up. Writes benchmarks/results/istft_decoder.json/.md.
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

WARMUP_STEPS = 2
DEFAULT_VARIANTS = ("seanet", "istft:pitch.source=none", "istft:pitch.source=harmonic",
                    "istft:pitch.source=harmonic,pitch.aperiodic=false")
NOTES_HEADING = "## Notes"


def parse_variant(spec: str) -> tuple[str, dict]:
    """"seanet" | "istft" | "istft:width=128,n_blocks=4" -> (label, ISTFTConfig overrides)."""
    kind, _, rest = spec.partition(":")
    if kind not in ("seanet", "istft"):
        raise SystemExit(f"--variant {spec!r}: expected seanet or istft[:k=v,...]")
    over = {}
    for kv in filter(None, rest.split(",")):
        k, _, v = kv.partition("=")
        try:
            over[k.strip()] = float(v) if "." in v else int(v)
        except ValueError:              # a named mode, e.g. pitch.source=harmonic
            over[k.strip()] = {"true": True, "false": False}.get(v.strip(), v.strip())
    return kind, over


def build(spec: str):
    import torch
    from codec.build import build_codec, build_mel_loss
    from codec.config import CodecConfig
    from core.config import load_config
    kind, over = parse_variant(spec)
    cfg = load_config(CodecConfig, [ROOT / "egs/libritts/conf/codec_mini.yaml"])
    pitch = replace(cfg.seanet.istft.pitch, **{k[len("pitch."):]: v for k, v in over.items() if k.startswith("pitch.")})
    istft = replace(cfg.seanet.istft, pitch=pitch, **{k: v for k, v in over.items() if not k.startswith("pitch.")})
    cfg = replace(cfg, seanet=replace(cfg.seanet, decoder=kind, istft=istft))
    torch.manual_seed(0)
    model = build_codec(cfg)
    oc = cfg.optim
    opt = torch.optim.AdamW(model.parameters(), lr=oc.lr, betas=tuple(oc.betas), eps=oc.eps,
                            weight_decay=oc.weight_decay)
    return cfg, model, opt, build_mel_loss(cfg)


# long: one measurement protocol (same process, interleaved rounds, then the table), read top to bottom
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5, help="timed training steps per variant")
    p.add_argument("--decode-reps", type=int, default=2, help="timed 10 s decodes per variant")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every measurement")
    p.add_argument("--variant", action="append", default=None,
                   help=f"seanet, istft or istft:k=v,... (ISTFTConfig fields, pitch.* for its PitchConfig); "
                        f"default {list(DEFAULT_VARIANTS)}")
    a = p.parse_args()
    import codec.train  # noqa: F401  (first: training's OpenMP waiting policy, before torch loads)
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from tqdm import tqdm
    from codec.api import Codec
    torch.set_flush_denormal(True)
    variants = a.variant or list(DEFAULT_VARIANTS)
    built = {v: build(v) for v in variants}
    cfg0 = built[variants[0]][0]
    B, T = cfg0.data.batch_size, int(cfg0.data.segment_seconds * cfg0.sample_rate)
    hop = cfg0.seanet.hop_length
    frames = -(-T // hop)
    n_q = cfg0.n_q_for_bandwidth(max(cfg0.train.bandwidths))
    dec_t = {v: [] for v in variants}
    gen_t = {v: [] for v in variants}
    dec_wall = {v: [] for v in variants}
    gen_wall = {v: [] for v in variants}
    flops = {}
    for v in variants:                                # forward GFLOP of the decoder on the training batch
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            built[v][1].decoder(torch.zeros(B, cfg0.seanet.dimension, frames))
        flops[v] = fc.get_total_flops() / 1e9
    load = [os.getloadavg()[0]]
    torch.set_num_threads(a.threads)
    clock = time.process_time
    for i in tqdm(range(WARMUP_STEPS + a.steps), desc="training steps"):
        g = torch.Generator().manual_seed(i)
        wav = 0.1 * torch.randn(B, 1, T, generator=g)
        z = torch.randn(B, cfg0.seanet.dimension, frames, generator=g)
        for v in variants:
            cfg, model, opt, mel = built[v]
            dec = model.decoder
            w0, t0 = time.perf_counter(), clock()
            y = dec(z)
            (y[..., :T] - wav).abs().mean().backward()
            w1, t1 = time.perf_counter(), clock()
            opt.zero_grad(set_to_none=True)
            w2, t2 = time.perf_counter(), clock()
            out = model(wav, n_q)
            loss = (cfg.loss.time * (out.audio - wav).abs().mean() + cfg.loss.mel * mel(out.audio, wav)
                    + cfg.loss.quant * out.quant_loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            w3, t3 = time.perf_counter(), clock()
            if i >= WARMUP_STEPS:
                dec_t[v].append(t1 - t0)
                gen_t[v].append(t3 - t2)
                dec_wall[v].append(w1 - w0)
                gen_wall[v].append(w3 - w2)
    load.append(os.getloadavg()[0])

    seconds = 10.0
    codecs = {v: Codec(built[v][1]) for v in variants}
    codes = torch.randint(0, cfg0.quantizer.codebook_size, (1, n_q, int(seconds * cfg0.frame_rate)),
                          generator=torch.Generator().manual_seed(1))
    decode = {v: [] for v in variants}
    decode_wall = {v: [] for v in variants}
    for r in tqdm(range(1 + a.decode_reps), desc="decode 10 s"):
        for v in variants:
            w0, t0 = time.perf_counter(), clock()
            codecs[v].decode(codes)
            if r:                                    # the first decode is oneDNN's set-up
                decode[v].append(clock() - t0)
                decode_wall[v].append(time.perf_counter() - w0)
    load.append(os.getloadavg()[0])

    rows = []
    for v in variants:
        cfg, model, _, _ = built[v]
        rows.append({
            "variant": v, "decoder_params_M": sum(p.numel() for p in model.decoder.parameters()) / 1e6,
            "codec_params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "decoder_fwd_gflop": flops[v],
            "decoder_fwd_bwd_cpu_s": statistics.median(dec_t[v]), "decoder_fwd_bwd_wall_s_min": min(dec_wall[v]),
            "gen_step_cpu_s": statistics.median(gen_t[v]), "gen_step_wall_s_min": min(gen_wall[v]),
            "decode_10s_cpu_s": statistics.median(decode[v]), "decode_10s_wall_s_min": min(decode_wall[v]),
            "decode_x_realtime_cpu": seconds / statistics.median(decode[v]),
            "istft": None if v == "seanet" else vars(cfg.seanet.istft),
            "decoder_fwd_bwd_s_all": [round(t, 4) for t in dec_t[v]], "gen_step_s_all": [round(t, 4) for t in gen_t[v]],
        })
    meta = {"batch": B, "segment_samples": T, "frames": frames, "n_q": n_q, "steps": a.steps,
            "threads": a.threads, "loadavg_1min_before_after_train_after_decode": [round(x, 2) for x in load],
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), "torch": torch.__version__}
    lines = ["| decoder | decoder params (M) | decoder forward GFLOP | decoder fwd+bwd CPU s (wall min) "
             "| generator step CPU s (wall min) | decode 10 s CPU s (wall min) | decode x real time (CPU) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['decoder_params_M']:.2f} | {r['decoder_fwd_gflop']:.2f} | "
                     f"{r['decoder_fwd_bwd_cpu_s']:.3f} ({r['decoder_fwd_bwd_wall_s_min']:.3f}) | "
                     f"{r['gen_step_cpu_s']:.3f} ({r['gen_step_wall_s_min']:.3f}) | "
                     f"{r['decode_10s_cpu_s']:.3f} ({r['decode_10s_wall_s_min']:.3f}) | {r['decode_x_realtime_cpu']:.0f} |")
    table = "\n".join(lines)
    print(table)
    from core.io import atomic_write_text
    out = ROOT / "benchmarks/results"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "istft_decoder.json", json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md_path = out / "istft_decoder.md"
    notes = ""                                        # hand-written notes survive re-runs
    if md_path.exists() and NOTES_HEADING in md_path.read_text():
        notes = "\n" + NOTES_HEADING + md_path.read_text().split(NOTES_HEADING, 1)[1]
    cmd = (f"python benchmarks/bench_istft_decoder.py --steps {a.steps} --decode-reps {a.decode_reps} "
           f"--threads {a.threads}" + "".join(f" --variant {v}" for v in (a.variant or [])))
    atomic_write_text(md_path, (
        "# SEANet decoder vs iSTFT head, mini config (CPU)\n\n"
        f"Command: `{cmd}` ({a.steps} timed steps, interleaved across variants in one process; "
        f"batch {B} x {T} samples = latent [{B}, {cfg0.seanet.dimension}, {frames}]; n_q {n_q}; {a.threads} "
        f"thread(s); medians of CPU time (time.process_time), minimum wall time in brackets; load average (1 min) before / after training / after decoding: "
        f"{', '.join(f'{x:.2f}' for x in load)}).\n"
        "Decoder fwd+bwd: the decoder alone with an L1 loss. Generator step: encoder + quantizer + decoder + "
        "L1/mel/quantizer losses + backward + AdamW, as codec/train.py without the GAN. Decode: "
        "Codec.decode of 10 s of codes (fp32, canonical windows). GFLOP: torch.utils.flop_counter on the "
        "decoder's forward over the training batch (convolutions and matmuls; the FFT, norms and "
        "elementwise ops are not counted; a training step is about 3x the forward).\n\n" + table + "\n" + notes))


if __name__ == "__main__":
    main()
