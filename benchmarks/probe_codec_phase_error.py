"""How far a trained iSTFT-head codec's phase is from the reference's (the phase-error column of docs/codec_phase.md).

    python benchmarks/probe_codec_phase_error.py MODEL_DIR [--manifest M.jsonl] [--items 8] [--seconds 3]

Runs the codec on the first `--items` utterances of the manifest (each cut to `--seconds`, all
codebooks, the codes' means as at inference) and prints the IP / GD / IAF losses of
codec/losses/phase.py between the head's predicted phase and the reference's STFT phase at the head's
framing, unweighted and weighted by the reference's magnitude. pi/2 = 1.571 is a phase unrelated to
the reference.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--manifest", default=str(ROOT / "egs/libritts/data/manifests/test-clean.jsonl"))
    p.add_argument("--items", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args()
    import torch
    from data_prep.audio import load_audio
    from codec.losses.phase import PhaseLoss
    from codec.checkpoint import load_codec
    torch.set_num_threads(1)
    model = load_codec(a.model).eval()
    head = model.decoder.post[-1]
    head.keep_spectrum = True
    head.train()                      # keep_spectrum acts in training mode; the quantizer stays in eval
    rows = [json.loads(line) for line in open(a.manifest)][: a.items]
    acc: dict[str, list[float]] = {}
    for r in rows:
        wav, _ = load_audio(r["path"], model.sample_rate)          # mono float32, resampled
        n = int(a.seconds * model.sample_rate)
        x = torch.as_tensor(wav[:n], dtype=torch.float32)[None, None]
        x = x[..., : x.shape[-1] // model.hop_length * model.hop_length]
        with torch.no_grad():
            model(x, model.n_q)
        _, phase = head.last_spectrum
        for w in ("none", "magnitude"):
            for k, v in PhaseLoss(head.n_fft, head.sub_hop, w)(phase, x).items():
                acc.setdefault(f"{k} ({w})", []).append(float(v))
    print(json.dumps({"model": a.model, "items": len(rows),
                      **{k: round(sum(v) / len(v), 3) for k, v in acc.items()}}))


if __name__ == "__main__":
    main()
