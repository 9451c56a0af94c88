"""Learning curves of a TTS run: exp_dir/baselines.json, valid.md and curves.png.

Published with every run because "my model learns nothing" is the top VALL-E complaint: a reference
curve, and the floor of baselines that read no text, tell a user whether theirs is on track.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from core.io import atomic_write_text

from .batch import TTSBatch
from .config import Part
from .data import TTSDataset
from .diagnostics import baseline_table, code_baselines, prompt_mixture_baselines


GAIN_KEYS = ("text_gain_nats", "text_gain_top1", "prompt_gain_nats", "prompt_gain_near_nats", "own_prompt_gain_nats",
             "monotonicity", "own_phoneme_attention", "dur_mse")
PROMPT_GAIN_NOTE = {
    "ar": "Prompt gain (nats a frame, `tts/prompt_gain.py`): the AR has no separate prompt (its loss covers the "
          "whole utterance, so a voice can only come from the frames already seen), so the first p frames "
          "(3 s, at most half the utterance) are replaced by the first p frames of another utterance, with its "
          "phonemes and durations, of the same speaker or of another speaker; the gain is the cross-entropy "
          "of the frames after p with the other speaker's beginning minus with the same speaker's (near: the "
          "first 10 frames after p only). 0 means the model does not carry the voice it has heard.",
    "nar": "Prompt gain (nats a code, `tts/prompt_gain.py`): the cross-entropy with the prompt replaced by "
           "another speaker's (the first p frames of one of their utterances, p the prompt's length) minus "
           "with another utterance of the same speaker (same length, same rule), as at synthesis; own prompt "
           "gain: minus with the prompt this validation uses (in prefix mode the utterance's own beginning, "
           "which also carries the continuity across the cut). 0 means the model ignores its prompt.",
}


def write_baselines(exp_dir: Path, train_ds: TTSDataset, valid: list[TTSBatch], n_q: int) -> dict:
    """exp_dir/baselines.json: the text-free count models (tts.diagnostics) fitted on the training dump
    and scored on exactly the positions the validation scores (the AR: whole utterances; the NAR: the
    targets after their prompts, whose leading silence would flatter a baseline), the floor every dev
    score is read against."""
    train = lambda: (train_ds.dump.codes(int(p), n_q) for p in train_ds.positions)     # noqa: E731
    dev = [b.codes[i, :n_q, : int(b.code_lens[i])].numpy() for b in valid for i in range(b.batch_size)]
    res = code_baselines(train(), dev, n_q, train_ds.dump.codebook_size)
    if n_q > 1:          # the NAR: the same-frame lookup mixed with the prompt's own unigram
        items = [(b.prompt[i, :n_q, : int(b.prompt_lens[i])].numpy(), b.codes[i, :n_q, : int(b.code_lens[i])].numpy())
                 for b in valid for i in range(b.batch_size)]
        for key, rows in prompt_mixture_baselines(train(), items, n_q, train_ds.dump.codebook_size).items():
            res.setdefault(key, {}).update(rows)
    atomic_write_text(exp_dir / "baselines.json", json.dumps(res, indent=2) + "\n")
    return res


def write_curves(exp_dir: Path, part: Part) -> None:
    """exp_dir/curves.png (train loss, dev top-1 per codebook vs step) and exp_dir/valid.md (table).

    Published with every run because "my model learns nothing" is the top VALL-E complaint: a
    reference curve tells a user whether theirs is on track."""
    rows = [json.loads(ln) for ln in (exp_dir / "losses.jsonl").read_text().splitlines() if ln.strip()]
    vfile = exp_dir / "valid.jsonl"
    valid = [json.loads(ln) for ln in vfile.read_text().splitlines() if ln.strip()] if vfile.exists() else []
    keys = sorted({k for v in valid for k in v if k.startswith("acc_k")}, key=lambda k: int(k[5:]))
    gain = [k.replace("acc", "loss") for k in keys if len(keys) > 1] + [k for k in GAIN_KEYS if any(k in v for v in valid)]
    bfile = exp_dir / "baselines.json"
    baselines = json.loads(bfile.read_text()) if bfile.exists() else {}
    lines = [f"# {part.upper()} validation (teacher-forced, dev dump)", "",
             "| step | loss | " + " | ".join(f"top-1 codebook {k[5:]}" for k in keys)
             + "".join(f" | {k.replace('_', ' ')}" for k in gain) + " |",
             "|---:|---:|" + "---:|" * (len(keys) + len(gain))]
    for v in valid:
        lines.append(f"| {v['step']} | {v['loss']:.3f} | " + " | ".join(f"{v.get(k, float('nan')):.3f}" for k in keys)
                     + "".join(f" | {v.get(k, float('nan')):.3f}" for k in gain) + " |")
    if gain:
        lines += ["", "Text gain: the dev score with each utterance's own phonemes minus the score with another "
                  "utterance's (cross-entropy of the codes in nats a frame, and top-1): 0 means the model ignores "
                  "the text. Monotonicity: rank correlation of audio frame and most attended phoneme in the most "
                  "monotonic layer (4 dev utterances; `attention.png`); own phoneme attention: the share of frames "
                  "whose most attended phoneme is their own; dur mse: the duration head's squared error of log(1 + frames) "
                  "(durations mode). The loss column is the codes' cross-entropy alone."]
    if any(k.startswith(("prompt_gain", "own_prompt")) for k in gain):
        lines += ["", PROMPT_GAIN_NOTE[part]]
    if baselines:
        lines += ["", "Baselines that read no text, fitted on the training dump, scored on the positions this validation scores "
                  "(`baselines.json`; their NLL compares with the loss of the AR (codebook 1) and the NAR's loss kK columns):", "",
                  *baseline_table(baselines)]
    atomic_write_text(exp_dir / "valid.md", "\n".join(lines) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:                      # plots are a convenience; the JSONL files hold the data
        return
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 3.6))
    ok = [r for r in rows if math.isfinite(r["loss"])]
    a.plot([r["step"] for r in ok], [r["loss"] for r in ok], lw=0.6, alpha=0.5, label="train (per step)")
    if valid:
        a.plot([v["step"] for v in valid], [v["loss"] for v in valid], "o-", label="dev")
    a.set_xlabel("step"), a.set_ylabel("cross-entropy"), a.legend(), a.set_title(f"{part.upper()} loss")
    for k in keys:
        pts = [(v["step"], v[k]) for v in valid if k in v]
        line, = b.plot(*zip(*pts), "o-", ms=3, label=f"codebook {k[5:]}")
        floor = baselines.get(f"codebook_{k[5:]}", {})
        best = max((r["top1"] for r in floor.values()), default=None)
        if best is not None:                   # the best text-free baseline of this codebook, dashed
            b.axhline(best, ls="--", lw=0.8, color=line.get_color())
    if any("shuffled_acc_k1" in v for v in valid):
        pts = [(v["step"], v["shuffled_acc_k1"]) for v in valid if "shuffled_acc_k1" in v]
        b.plot(*zip(*pts), "x:", ms=4, color="gray", label="codebook 1, another text")
    b.set_xlabel("step"), b.set_ylabel("top-1 accuracy (dev)"), b.set_title("teacher-forced top-1")
    if keys:
        b.legend(fontsize=7, ncol=2)
    for k in ("text_gain_nats", "prompt_gain_nats", "prompt_gain_near_nats", "own_prompt_gain_nats"):
        pts = [(v["step"], v[k]) for v in valid if k in v]
        if pts:
            c.plot(*zip(*pts), "o-", ms=3, label=k.replace("_nats", "").replace("_", " "))
    c.axhline(0, color="gray", lw=0.6)
    c.set_xlabel("step"), c.set_ylabel("nats per code (dev)"), c.set_title("text and prompt gain")
    if c.lines[:-1]:
        c.legend(fontsize=7)
    fig.tight_layout()
    tmp = exp_dir / ".curves.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(exp_dir / "curves.png")
