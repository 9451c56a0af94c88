"""Codec inference benchmark: speed vs EnCodec, long-file memory, tokenization throughput.

    python benchmarks/bench_codec_inference.py [--threads 1] [--repeats 5] [--long-minutes 60]

1. Encode / decode speed (x real time) of the `paper` model (default CodecConfig, random weights) on
   a 10-second 24 kHz clip at 1.5 and 6 kbps, side by side with EnCodec's reference implementation
   of the same size (random weights; `pip install --no-deps encodec==0.1.1`; skipped if absent).
   Same thread setting for both, warm-up, median of interleaved repeats.
2. Chunked long-file encoding: a synthetic N-minute WAV encoded in a fresh process; peak RSS.
3. Tokenization throughput (hours of audio per hour) on a synthetic corpus, paper model, 6 kbps.
Results: benchmarks/results/codec_inference.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"


def clip(seconds: float, sr: int = 24000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t)) + 0.03 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def load_encodec():
    try:
        sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
        import encodec
    except ImportError:
        return None
    m = encodec.EncodecModel._get_model(target_bandwidths=[1.5, 3, 6, 12, 24], sample_rate=24000, channels=1,
                                        causal=False, model_norm="weight_norm", audio_normalize=True, name="x")
    return m.eval()


def bench_speed(args) -> dict:
    from codec.api import Codec
    from codec.build import build_codec
    from codec.config import CodecConfig
    torch.manual_seed(0)
    t0 = time.perf_counter()
    ours = Codec(build_codec(CodecConfig()))
    load_s = time.perf_counter() - t0
    enc_model = load_encodec()
    x = clip(args.seconds)
    xt = torch.from_numpy(x)[None, None]
    rows = []
    for bw in (1.5, 6.0):
        fns = {}
        fns["ours_encode"] = lambda: ours.encode(x, 24000, bandwidth=bw)
        res = ours.encode(x, 24000, bandwidth=bw)
        fns["ours_decode"] = lambda: ours.decode(res)
        if enc_model is not None:
            enc_model.set_target_bandwidth(bw)
            with torch.no_grad():
                frames = enc_model.encode(xt)

            def e_enc():
                with torch.no_grad():
                    return enc_model.encode(xt)

            def e_dec():
                with torch.no_grad():
                    return enc_model.decode(frames)
            fns["encodec_encode"], fns["encodec_decode"] = e_enc, e_dec
        for f in fns.values():       # warm-up
            f()
        times = {k: [] for k in fns}
        for _ in range(args.repeats):  # interleaved, so machine load hits both alike
            for k, f in fns.items():
                a = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - a)
        med = {k: statistics.median(v) for k, v in times.items()}
        row = {"bandwidth_kbps": bw, "n_q": ours.resolve_n_q(bw), "seconds": args.seconds,
               "median_s": med, "xRT": {k: args.seconds / v for k, v in med.items()},
               "all_s": times}
        if enc_model is not None:
            row["ratio_ours_over_encodec"] = {
                "encode": med["encodec_encode"] / med["ours_encode"],
                "decode": med["encodec_decode"] / med["ours_decode"],
                "encode+decode": (med["encodec_encode"] + med["encodec_decode"]) /
                                 (med["ours_encode"] + med["ours_decode"])}
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "all_s"}), flush=True)
    return {"threads": torch.get_num_threads(), "model_build_s": load_s, "encodec": enc_model is not None,
            "rows": rows}


LONG_CHILD = r"""
import resource, sys, time, json
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads})
from codec.api import Codec
from codec.build import build_codec
from codec.config import CodecConfig
from codec.chunked import encode_file_chunked
torch.manual_seed(0)
c = Codec(build_codec(CodecConfig()))
def hwm():  # VmHWM: this process's peak RSS (ru_maxrss can carry the parent's peak across exec)
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) / 1024
rss0 = hwm()
t = time.perf_counter()
codes, scale, n = encode_file_chunked(c.engine, {path!r}, c.resolve_n_q(6.0), chunk_seconds=30.0, chunk=c.chunk_frames)
wall = time.perf_counter() - t
rss1 = hwm()
print(json.dumps(dict(peak_rss_mb=rss1, rss_after_model_load_mb=rss0, wall_s=wall, samples=n,
                      frames=int(codes.shape[-1]), xRT=n / 24000 / wall)))
"""


def bench_long(args) -> dict:
    import soundfile as sf
    minutes = args.long_minutes
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        with sf.SoundFile(str(path), "w", samplerate=24000, channels=1, subtype="PCM_16") as fh:
            for i in range(int(minutes * 6)):       # 10-second blocks
                fh.write(clip(10.0, seed=i))
        code = LONG_CHILD.format(root=str(ROOT), threads=args.threads, path=str(path))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if out.returncode:
            return {"error": out.stderr[-2000:]}
        res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(minutes=minutes, file_mb=minutes * 60 * 24000 * 2 / 1e6,
               one_pass_input_float32_mb=minutes * 60 * 24000 * 4 / 1e6)
    print(json.dumps(res), flush=True)
    return res


def bench_tokenize(args) -> dict:
    import soundfile as sf
    from codec.api import Codec
    from codec.build import build_codec
    from codec.config import CodecConfig
    from codec.tokenize import tokenize
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        Codec(build_codec(CodecConfig())).save_pretrained(tmp / "model")
        rows = []
        rng = np.random.default_rng(0)
        for i in range(args.tok_utts):
            d = float(rng.uniform(2.0, 10.0))
            p = tmp / "wav" / f"spk{i % 3}_{i:04d}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, clip(d, seed=100 + i), 24000)
            rows.append({"id": p.stem, "path": str(p), "duration": d, "sr": 24000, "speaker": f"spk{i % 3}",
                         "chapter": "0", "text_norm": "hello", "text_orig": "Hello"})
        man = tmp / "m.jsonl"
        man.write_text("".join(json.dumps(r) + "\n" for r in rows))
        t = time.perf_counter()
        summary = tokenize([str(man)], str(tmp / "model"), str(tmp / "codes"), bandwidth=6.0,
                           utts_per_shard=8, progress=False)
        wall = time.perf_counter() - t
    hours = sum(r["duration"] for r in rows) / 3600
    res = {"utterances": len(rows), "audio_hours": hours, "wall_s_incl_model_load": wall,
           "hours_per_hour": hours * 3600 / wall, "encode_loop_hours_per_hour": summary["hours_per_hour"]}
    print(json.dumps(res), flush=True)
    return res


def write_md(res: dict) -> str:
    lines = ["# Codec inference benchmark", "",
             f"CPU, {res['speed']['threads']} thread(s) for both systems; paper model (default CodecConfig, "
             f"random weights) vs EnCodec 0.1.1 24 kHz (random weights); {res['speed']['rows'][0]['seconds']:.0f} s clip; "
             f"median of {res['args']['repeats']} interleaved repeats after warm-up. "
             f"x RT = audio seconds / wall seconds.", ""]
    lines += ["| kbps | n_q | ours encode xRT | EnCodec encode xRT | ours decode xRT | EnCodec decode xRT | "
              "ratio encode | ratio decode | ratio enc+dec |", "|---|---|---|---|---|---|---|---|---|"]
    for r in res["speed"]["rows"]:
        x, q = r["xRT"], r.get("ratio_ours_over_encodec", {})
        g = lambda d, k: f"{d[k]:.1f}" if k in d else "n/a"     # noqa: E731
        h = lambda k: f"{q[k]:.2f}x" if k in q else "n/a"        # noqa: E731
        lines.append(f"| {r['bandwidth_kbps']} | {r['n_q']} | {g(x, 'ours_encode')} | {g(x, 'encodec_encode')} | "
                     f"{g(x, 'ours_decode')} | {g(x, 'encodec_decode')} | {h('encode')} | {h('decode')} | "
                     f"{h('encode+decode')} |")
    if "long" in res:
        lg = res["long"]
        lines += ["", "## Long file (chunked, streamed from disk; paper model, 6 kbps; fresh process)", ""]
        if "error" in lg:
            lines.append(f"failed: {lg['error'][-300:]}")
        else:
            lines += ["| audio | peak RSS | RSS after model load | wall | x RT | one-pass input alone (float32) |",
                      "|---|---|---|---|---|---|",
                      f"| {lg['minutes']:.0f} min | {lg['peak_rss_mb']:.0f} MB | {lg['rss_after_model_load_mb']:.0f} MB | "
                      f"{lg['wall_s']:.0f} s | {lg['xRT']:.1f} | {lg['one_pass_input_float32_mb']:.0f} MB |"]
    if "tokenize" in res:
        tk = res["tokenize"]
        lines += ["", "## Tokenization (paper model, 6 kbps, 1 process)", "",
                  "| utterances | audio | wall (incl. model load) | hours of audio per hour |", "|---|---|---|---|",
                  f"| {tk['utterances']} | {tk['audio_hours'] * 3600:.0f} s | {tk['wall_s_incl_model_load']:.1f} s | "
                  f"{tk['hours_per_hour']:.1f} (encode loop {tk['encode_loop_hours_per_hour']:.1f}) |"]
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


NOTES = """## Notes

- Levers in `Codec` (all in the inference copy; the trainable model is untouched): weight norm folded,
  eval + `torch.inference_mode`, fused quantizer (per-stage 1/var, mu/var and constants precomputed;
  one matmul per stage; decoding gathers from one stacked table), kernel-1 convolutions without the
  (0, 0) reflect-padding copy, reflect padding built with one `torch.cat` (5x faster than
  `reflection_pad1d` on CPU, identical values), transposed convolutions rewritten as one ordinary
  convolution + an interleave (`PolyphaseConvTranspose1d`, equal to 5e-8).
- Why not 2x: both systems run the same convolutions (same FLOPs, same oneDNN kernels) and the same
  2-layer LSTMs; on one thread the two LSTMs alone cost about 0.24 s + 0.24 s per 10 s clip, about a
  third of EnCodec's encode+decode time, and cannot shrink without changing the numbers. ELU costs
  as much as a residual convolution at 32 channels. What remains to win is overhead EnCodec also has.
- torch.compile (inductor) of the conv stacks: 34 s to compile, no measurable gain (encoder pre 0.57 s
  compiled vs 0.51 s eager; decoder post 0.50 vs 0.59 s), so it is not used.
- Not tried yet: running the LSTM of window k in parallel with the convolutions of window k+1 (a
  2-thread pipeline over the canonical windows).
- Timings on this shared 2-core VM vary by about 20% between runs; repeats are interleaved so that
  load hits both systems alike.
- Peak RSS is VmHWM of a fresh process (torch + the paper model with its folded inference copy is
  about 0.55 GB before any audio). The working set is one 10 s canonical window's activations plus
  the codes; yet a 5-minute file peaked at 951 MB and the 1-hour file at 1171 MB (measured
  2026-11-22): about 0.2 GB of growth over 55 minutes that the codes (17 MB as int64) do not explain,
  not yet investigated (allocator fragmentation is the first suspect). A one-pass encode of 1 hour
  would need the input alone as float32 (346 MB) and about 11 GB for one 32-channel activation.
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--long-minutes", type=float, default=60.0, help="0 skips the long-file run")
    p.add_argument("--tok-utts", type=int, default=24, help="0 skips tokenization")
    p.add_argument("--sections", default="speed,tokenize,long",
                   help="comma list; sections not run are kept from an existing result file")
    p.add_argument("--out", default=str(RESULTS / "codec_inference"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    res = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    res.update({"args": vars(args), "torch": torch.__version__, "machine": os.uname().machine,
                "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M")})
    sections = set(args.sections.split(","))
    if "speed" in sections:
        res["speed"] = bench_speed(args)
    if "tokenize" in sections and args.tok_utts:
        res["tokenize"] = bench_tokenize(args)
    if "long" in sections and args.long_minutes:
        res["long"] = bench_long(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    md = write_md(res)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
