"""Prompt gain: does a model use its acoustic prompt? (the voice counterpart of the text gain)

Prompt gain = dev cross-entropy of the same target codes, with the same text, given a prompt of the
same length from ANOTHER speaker minus given a prompt from another utterance of the item's OWN speaker,
in nats per scored code. A model that ignores its prompt scores 0, whatever its SIM.

Every dev item gets two fixed donors (`PromptSwap`, drawn once from the run's seed): another utterance
of the same speaker and an utterance of another speaker. Both prompts are the first p frames of the
donor (tiled if the donor is shorter), so the two differ only in whose voice they are.

- NAR: the batch's prompt of p frames is replaced by each donor's p frames (`prompt_gain_nats`, the
  synthesis setting: the prompt is always another utterance there). `own_prompt_gain_nats` compares
  against the prompt the model validates with (in `prefix` mode the utterance's own beginning, which
  also carries continuity across the cut, not only the voice).
- AR: the AR has no separate prompt (in `prefix` mode its loss covers the whole utterance, so a voice
  can only come from the frames already seen). Honestly defined: the first p frames of the utterance
  (p = 3 s, at most half of it) are replaced by a donor's first p frames, and, with durations, their
  phonemes and durations by the donor's (so text and audio agree on both sides of the cut, as at
  synthesis, where the prompt is another utterance with its own transcript); scored: the frames after
  p. Both variants are spliced the same way, so the cut itself costs both alike.
  `prompt_gain_near_nats`: the first NEAR_FRAMES frames after the cut only (the gain fades with distance).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.seeding import Stream, stream_rng

from .batch import TTSBatch
from .data import TTSDataset, collate

DONOR_KEY = 1 << 40      # the donors' key in the validation stream (item indices never reach it)
NEAR_FRAMES = 10


def choose_donors(speakers: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """For each item: (another item of the same speaker, an item of another speaker), -1 when none."""
    rng = stream_rng(seed, Stream.TTS_VALID, DONOR_KEY)
    spk = np.asarray(speakers, dtype=object)
    same = np.full(len(spk), -1, np.int64)
    other = np.full(len(spk), -1, np.int64)
    for i, s in enumerate(spk):
        mates = np.flatnonzero(spk == s)
        mates = mates[mates != i]
        strangers = np.flatnonzero(spk != s)
        if len(mates) and s != "None":
            same[i] = mates[rng.integers(len(mates))]
        if len(strangers) and s != "None":
            other[i] = strangers[rng.integers(len(strangers))]
    return same, other


def _cut(durations: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens overlapping frames [lo, hi) and their frames inside it: (token indices, durations)."""
    ends = np.cumsum(durations)
    starts = ends - durations
    keep = np.flatnonzero((starts < hi) & (ends > lo) | ((durations == 0) & (starts >= lo) & (starts < hi)))
    d = np.minimum(ends[keep], hi) - np.maximum(starts[keep], lo)
    return keep, d.astype(np.int64)


class PromptSwap:
    """The dev set's fixed donors and the prompt-swapped batches built from them."""

    def __init__(self, ds: TTSDataset, seed: int) -> None:
        self.ds = ds
        self.same, self.other = choose_donors(ds.speakers, seed)

    def _codes(self, j: int) -> np.ndarray:
        return self.ds.dump.codes(int(self.ds.positions[j]), self.ds.n_q)           # [K, T]

    def window(self, j: int, n: int) -> np.ndarray:
        """The first n frames of item j's codes, tiled if it is shorter: [K, n]."""
        c = self._codes(j)
        return np.tile(c, (1, -(-n // c.shape[1])))[:, :n]

    def usable(self, batch: TTSBatch) -> list[int]:
        """Rows of the batch that have both donors (and, for the NAR, a prompt)."""
        idx = batch.index.cpu().numpy()
        return [b for b, i in enumerate(idx) if self.same[i] >= 0 and self.other[i] >= 0]

    def nar_prompts(self, batch: TTSBatch, donors: np.ndarray) -> TTSBatch:
        """The batch with every row's prompt replaced by its donor's first prompt_lens[b] frames."""
        prompt = batch.prompt.clone()
        for b, i in enumerate(batch.index.tolist()):
            n = int(batch.prompt_lens[b])
            if n and donors[i] >= 0:
                w = self.window(int(donors[i]), n)[: prompt.shape[1]]
                prompt[b, : w.shape[0], :n] = torch.from_numpy(w.astype(np.int64)).to(prompt.device)
        return TTSBatch(batch.phonemes, batch.phoneme_lens, batch.codes, batch.code_lens, prompt,
                        batch.prompt_lens, batch.durations, batch.index)

    def ar_splices(self, batch: TTSBatch, rows: list[int]) -> tuple[TTSBatch, TTSBatch, torch.Tensor]:
        """(same-speaker splice, other-speaker splice, cut frame p [len(rows)]) of the given rows."""
        ds = self.ds
        out: dict[str, list[dict]] = {"same": [], "other": []}
        cuts = []
        for b in rows:
            i = int(batch.index[b])
            own = self._codes(i)
            T = own.shape[1]
            donors = {"same": int(self.same[i]), "other": int(self.other[i])}
            p = max(1, min(ds.prompt_max, T // 2, *(int(ds.frames[j]) for j in donors.values())))
            cuts.append(p)
            for name, j in donors.items():
                codes = np.concatenate([self._codes(j)[:, :p], own[:, p:]], axis=1)
                ph, dur = ds.phonemes(i), None
                if ds.durations(i) is not None:
                    dk, dd = _cut(ds.durations(j), 0, p)
                    ok, od = _cut(ds.durations(i), p, T)
                    ph = np.concatenate([ds.phonemes(j)[dk], ds.phonemes(i)[ok]])
                    dur = np.concatenate([dd, od])
                out[name].append({"index": i, "phonemes": ph, "codes": codes, "prompt": codes[:, :0],
                                  "durations": dur})
        return collate(out["same"]), collate(out["other"]), torch.tensor(cuts, dtype=torch.long)


def ar_frame_nll(model, batch: TTSBatch) -> torch.Tensor:
    """The AR's cross-entropy of every frame of codebook 1, [B, T] (0 beyond code_lens)."""
    out = model(batch, return_logits=True)
    B, T = batch.codes.shape[0], batch.codes.shape[2]
    t = torch.arange(T + 1, device=batch.codes.device)[None, :]
    L = batch.code_lens[:, None]
    scored = t < L if model.cfg.ar_alignment == "durations" else t <= L
    c1 = torch.cat([batch.codes[:, 0].long(), torch.zeros(B, 1, dtype=torch.long, device=t.device)], 1)
    tgt = torch.where(t == L, torch.full_like(c1, model.cfg.eos_id), c1)
    nll = torch.zeros(B, T + 1, device=t.device)
    nll[scored] = F.cross_entropy(out.logits.float(), tgt[scored], reduction="none")
    return nll[:, :T]


def ar_gain_sums(model, swap: PromptSwap, batch: TTSBatch) -> torch.Tensor:
    """[CE sum same, CE sum other, frames, near CE sum same, near CE sum other, near frames] of a batch."""
    res = torch.zeros(6, dtype=torch.float64)
    rows = swap.usable(batch)
    if not rows:
        return res
    same, other, cut = swap.ar_splices(batch, rows)
    dev = batch.codes.device
    same, other, cut = same.to(dev), other.to(dev), cut.to(dev)
    t = torch.arange(same.codes.shape[2], device=dev)[None, :]
    after = (t >= cut[:, None]) & (t < same.code_lens[:, None])
    near = after & (t < cut[:, None] + NEAR_FRAMES)
    for j, b in enumerate((same, other)):
        nll = ar_frame_nll(model, b)
        res[j] = float(nll[after].sum())
        res[3 + j] = float(nll[near].sum())
    res[2], res[5] = float(after.sum()), float(near.sum())
    return res


def nar_gain_sums(model, swap: PromptSwap, batch: TTSBatch, stage: int, own_loss: float) -> torch.Tensor:
    """[CE sum own prompt, CE sum same-speaker prompt, CE sum other-speaker prompt, codes] of one stage."""
    res = torch.zeros(4, dtype=torch.float64)
    rows = swap.usable(batch)
    if not rows or int(batch.prompt_lens.min()) == 0:
        return res
    if len(rows) < batch.batch_size:
        batch = TTSBatch(*(None if x is None else x[rows] for x in (
            batch.phonemes, batch.phoneme_lens, batch.codes, batch.code_lens, batch.prompt, batch.prompt_lens,
            batch.durations, batch.index)))
        own_loss = float(model(batch, stage=stage).loss)
    n = float(batch.code_lens.sum())
    res[0], res[3] = own_loss * n, n
    for j, donors in enumerate((swap.same, swap.other)):
        res[1 + j] = float(model(swap.nar_prompts(batch, donors), stage=stage).loss) * n
    return res


def gain_results(part: str, sums: torch.Tensor) -> dict:
    """The prompt gains (nats per scored code) from the summed vectors of ar_gain_sums / nar_gain_sums."""
    s = sums.tolist()
    if part == "ar":
        out = {}
        if s[2]:
            out["prompt_gain_nats"] = (s[1] - s[0]) / s[2]
        if s[5]:
            out["prompt_gain_near_nats"] = (s[4] - s[3]) / s[5]
        return out
    if not s[3]:
        return {}
    return {"prompt_gain_nats": (s[2] - s[1]) / s[3], "own_prompt_gain_nats": (s[2] - s[0]) / s[3]}


__all__ = ["PromptSwap", "choose_donors", "ar_frame_nll", "ar_gain_sums", "nar_gain_sums", "gain_results",
           "NEAR_FRAMES"]
