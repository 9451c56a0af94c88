"""Score codecs for pitch and voice on the same test items (the protocol of docs/codec_pitch.md).

    python benchmarks/probe_codec_pitch.py "plain=DIR_A" "harmonic=DIR_B" \
        --manifest egs/libritts/data/manifests/test-clean.jsonl [--n-q 3 15] [--narrowband OUT.png]

Items: the first `--per-speaker` utterances (cut at `--seconds`) of the first `--speakers` speakers of the
manifest. Per codec and codebook count: F0 error (median cents on frames voiced in both), share within
50 cents, GPE and VDE against the recording, pooled over frames (data_prep.pitch); SIM = resemblyzer cosine
to ANOTHER recording of the same speaker (its `--per-speaker`-th next utterance); STOI and PESQ-WB at 16 kHz.
The recordings themselves are the first row. `--narrowband` draws the highest- and lowest-pitched
speakers' first utterance (3 s, n_fft 2048, 0-1.5 kHz) for the recording and every codec at the first n_q.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def items_of(manifest: str, speakers: int, per_speaker: int) -> list[tuple[dict, dict]]:
    """(item, another utterance of its speaker) pairs."""
    from data_prep.libritts import read_manifest
    by = defaultdict(list)
    for r in read_manifest(manifest):
        by[r["speaker"]].append(r)
    return [(by[s][i], by[s][(i + per_speaker) % len(by[s])]) for s in sorted(by)[:speakers]
            for i in range(min(per_speaker, len(by[s])))]


def score(codec, items, n_q: int, seconds: float, enc) -> dict:
    from codec.evaluation.metrics import pesq_wb, stoi
    from data_prep.audio import load_audio
    from data_prep.pitch import pooled_scores, track_f0
    from tts.evaluation.speaker import cosine
    pairs, sims, st, pq = [], [], [], []
    for r, other in items:
        w, _ = load_audio(r["path"], 16000)
        w = w[: int(16000 * seconds)]
        y = w if codec is None else codec.decode(codec.encode(w, sample_rate=16000, n_q=n_q))[0, 0].numpy()[: len(w)]
        pairs.append((track_f0(y, 16000), track_f0(w, 16000)))
        o, _ = load_audio(other["path"], 16000)
        sims.append(cosine(enc.embed(y, 16000), enc.embed(o, 16000)))
        st.append(stoi(w, y, 16000))
        pq.append(pesq_wb(w, y, 16000))
    p = pooled_scores(pairs)
    return {"cents": p.cents_median, "within_50": p.within_50, "gpe": p.gpe, "vde": p.vde,
            "sim": float(np.mean(sims)), "stoi": float(np.mean(st)), "pesq": float(np.mean(pq))}


def narrowband(out: str, items, codecs: list[tuple[str, object]], n_q: int) -> None:
    """The highest- and lowest-pitched speakers' first utterance (3 s): recording and every codec, drawn by
    codec.evaluation.pitch.plot_narrowband (the picture codec.evaluate draws)."""
    from codec.evaluation.pitch import female_male, plot_narrowband
    from data_prep.audio import load_audio
    from data_prep.pitch import track_f0
    firsts = list({r["speaker"]: r for r, _ in reversed(items)}.values())
    wavs = [load_audio(r["path"], 16000)[0][: 16000 * 3] for r in firsts]
    columns, f0 = [], {}
    for c, i in enumerate(female_male([track_f0(w, 16000) for w in wavs])):
        panels = [("recording", wavs[i], 16000)]
        for label, codec in codecs:
            y = codec.decode(codec.encode(wavs[i], sample_rate=16000, n_q=n_q))[0, 0].numpy()[: len(wavs[i])]
            panels.append((f"{label}, {n_q} codebooks", y, 16000))
        columns.append((("highest", "lowest")[c] + "-pitched voice", panels))
        f0.update({(c, r): track_f0(w, 16000) for r, (_, w, _) in enumerate(panels)})
    plot_narrowband(Path(out), columns, f0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("codecs", nargs="+", help="label=model_dir (a model or checkpoint directory)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--speakers", type=int, default=8)
    p.add_argument("--per-speaker", type=int, default=3)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--n-q", type=int, nargs="+", default=[3, 15])
    p.add_argument("--narrowband", help="PNG of narrowband spectrograms (female and male voice)")
    a = p.parse_args()
    warnings.simplefilter("ignore")
    import torch
    from codec.api import Codec
    from tts.evaluation.speaker import SpeakerEncoder
    torch.set_num_threads(1)
    items = items_of(a.manifest, a.speakers, a.per_speaker)
    enc = SpeakerEncoder()
    codecs = [(label, Codec.from_pretrained(d)) for label, _, d in (s.partition("=") for s in a.codecs)]
    print("| codec | codebooks | F0 error (cents) | within 50 c | GPE | VDE | SIM | STOI | PESQ-WB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, c in [("recording", None), *codecs]:
        for n_q in ([0] if c is None else a.n_q):
            s = score(c, items, n_q, a.seconds, enc)
            print(f"| {label} | {n_q or '-'} | {s['cents']:.1f} | {s['within_50']:.3f} | {s['gpe']:.3f} | "
                  f"{s['vde']:.3f} | {s['sim']:.3f} | {s['stoi']:.3f} | {s['pesq']:.3f} |", flush=True)
    if a.narrowband:
        narrowband(a.narrowband, items, codecs, a.n_q[0])


if __name__ == "__main__":
    main()
