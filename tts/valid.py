"""The TTS models' validation during training: teacher-forced loss and top-1 accuracy per codebook.

Every rank validates its share of the dev batches and the sums are reduced, so no rank waits in a
collective while another validates (the multi-GPU hang some VALL-E toolkits have). The AR's
and NAR validations also measure how much the text helps (the same codes scored with another
utterance's phonemes) and how much the prompt's voice helps (the prompt gain, tts/prompt_gain.py), and
the AR's, on the main process, the alignment its attention shows (tts.diagnostics).
"""
from __future__ import annotations

import logging
from typing import Optional

import torch

from core.io import append_jsonl

from .batch import TTSBatch
from .config import Part
from .diagnostics import attention_summary, plot_attention, shuffled_text
from .prompt_gain import PromptSwap, ar_gain_sums, gain_results, nar_gain_sums

log = logging.getLogger(__name__)


def codebooks(part: Part, n_q: int) -> list[int]:
    """The codebooks a part predicts (1-based): the AR codebook 1, the NAR 2..n_q."""
    return [1] if part == "ar" else list(range(2, n_q + 1))


def metric_vector(out, part: Part, n_q: int, loss: torch.Tensor) -> torch.Tensor:
    """[loss, hits_k, count_k for each codebook k] as one float tensor (summed over ranks, then divided).

    AR: codebook 1 (`acc` over the scored positions, <eos> included). NAR: codebooks 2..n_q
    (`acc_k{k}` of the stages drawn in this batch; others count 0)."""
    m = out.metrics
    ks = codebooks(part, n_q)
    vals = [float(loss.detach())]
    for k in ks:
        acc_key, n_key = ("acc", "n_tokens") if part == "ar" else (f"acc_k{k}", f"n_tokens_k{k}")
        n = float(m.get(n_key, 0.0))
        vals += [float(m[acc_key]) * n if n else 0.0, n]
    return torch.tensor(vals, dtype=torch.float64)


def summarise(vec: torch.Tensor, part: Part, n_q: int, world: int) -> dict:
    """Invert metric_vector after a sum over ranks: loss (mean over ranks) and acc_k{k}."""
    ks = codebooks(part, n_q)
    out = {"loss": float(vec[0]) / world}
    for i, k in enumerate(ks):
        hits, n = float(vec[1 + 2 * i]), float(vec[2 + 2 * i])
        if n:
            out[f"acc_k{k}"] = hits / n
    return out


def _text_gain(model, batch: TTSBatch, out, stage) -> torch.Tensor:
    """[CE*codes with its own text, hits, CE*codes with another item's text, hits, codes] of one batch
    (zeros for a batch of one item: it has no other text)."""
    g = torch.zeros(5, dtype=torch.float64)
    if batch.batch_size < 2:
        return g
    n = float(out.metrics["n_tokens"])
    wrong = model(shuffled_text(batch), stage=stage)
    for j, o in enumerate((out, wrong)):
        g[2 * j] += float(o.metrics.get("code_loss", o.loss)) * n
        g[2 * j + 1] += float(o.metrics["acc"]) * n
    g[4] += n
    return g


def _gain_results(g: torch.Tensor) -> dict:
    if not g[4]:
        return {}
    return {"text_gain_nats": float((g[2] - g[0]) / g[4]),        # CE with another text minus CE with its own
            "text_gain_top1": float((g[1] - g[3]) / g[4]), "shuffled_acc": float(g[3] / g[4])}


@torch.no_grad()
def validate(model: torch.nn.Module, batches: list[TTSBatch], part: Part, n_q: int, accelerator,
             device, swap: Optional[PromptSwap] = None) -> dict:
    """Teacher-forced loss and top-1 accuracy per codebook on this rank's batches, reduced over ranks,
    with the text gain (both parts) and, given `swap`, the prompt gain (tts/prompt_gain.py).

    Every rank calls this (with possibly no batches): only the final reduce is a collective.
    AR: codebook 1. NAR: every stage 2..n_q on every batch (not drawn)."""
    was = model.training
    model.eval()
    ks = codebooks(part, n_q)
    sums = torch.zeros(1 + 2 * len(ks), dtype=torch.float64)     # [loss*tokens, hits_k, n_k ...]
    gain = torch.zeros(5, dtype=torch.float64)                     # text gain sums (_text_gain)
    pgain = torch.zeros(6 if part == "ar" else 4, dtype=torch.float64)   # prompt gain sums
    ce = torch.zeros(len(ks), dtype=torch.float64)                 # code CE * codes per codebook
    dur = torch.zeros(2, dtype=torch.float64)                       # [MSE of log(1 + frames) * tokens, tokens]
    tokens = 0.0
    for batch in batches:
        batch = batch.to(device)
        for i, k in enumerate(ks):
            stage = None if part == "ar" else k
            out = model(batch, stage=stage)
            n = float(out.metrics["n_tokens"])
            # the code cross-entropy (comparable with the baselines' NLL); a duration loss is reported apart
            sums[0] += float(out.metrics.get("code_loss", out.loss)) * n
            ce[i] += float(out.metrics.get("code_loss", out.loss)) * n
            if "dur_mse" in out.metrics:
                dur[0] += float(out.metrics["dur_mse"]) * float(out.metrics["n_phonemes"])
                dur[1] += float(out.metrics["n_phonemes"])
            sums[1 + 2 * i] += float(out.metrics["acc"]) * n
            sums[2 + 2 * i] += n
            tokens += n
            gain += _text_gain(model, batch, out, stage)
            if swap is not None and batch.index is not None:
                pgain += (ar_gain_sums(model, swap, batch) if part == "ar"
                          else nar_gain_sums(model, swap, batch, k, float(out.metrics.get("code_loss", out.loss))))
    model.train(was)
    parts = [sums, gain, pgain, ce, dur, torch.tensor([tokens], dtype=torch.float64)]
    total = accelerator.reduce(torch.cat(parts).to(device), "sum").cpu()
    sums, gain, pgain, ce, dur, _ = total.split([len(p) for p in parts])
    res = {"loss": float(sums[0] / total[-1]) if total[-1] else float("nan"), "tokens": float(total[-1])}
    for i, k in enumerate(ks):
        if sums[2 + 2 * i]:
            res[f"acc_k{k}"] = float(sums[1 + 2 * i] / sums[2 + 2 * i])
            res[f"loss_k{k}"] = float(ce[i] / sums[2 + 2 * i])
    res.update({k.replace("shuffled_acc", "shuffled_acc_k1") if part == "ar" else k: v
                for k, v in _gain_results(gain).items()})
    res.update(gain_results(part, pgain))
    if dur[1]:
        res["dur_mse"] = float(dur[0] / dur[1])
    return res


class TTSValidation:
    """The validation of one run (`run`: core.training.TrainingRun) on this rank's dev `batches`:
    calling it at a step (on every rank: it reduces) appends a line to exp_dir/valid.jsonl, logs the
    scores to TensorBoard under valid/ and, for the AR, draws exp_dir/attention.png."""

    def __init__(self, run, model: torch.nn.Module, batches: list[TTSBatch], part: Part, n_q: int,
                 enabled: bool, swap: Optional[PromptSwap] = None) -> None:
        self.run, self.model, self.batches, self.part, self.n_q = run, model, batches, part, n_q
        self.enabled = enabled          # False without a dev dump
        self.swap = swap                # the prompt gain's donors (None: no prompt gain)

    def __call__(self, at_step: int) -> dict:
        run = self.run
        if not self.enabled:
            return {}
        res = validate(self.model, self.batches, self.part, self.n_q, run.accelerator, run.device, self.swap)
        if run.main and self.part == "ar" and self.batches:   # alignment you can see: a few dev items
            att, maps = attention_summary(self.model, [b.to(run.device) for b in self.batches[:2]])
            res.update(att)
            if maps:
                plot_attention(maps, run.exp_dir / "attention.png", f"AR audio-to-phoneme attention, step "
                               f"{at_step} (layer {att['monotonicity_layer']}, dev)")
        if run.main:
            run.accelerator.log({f"valid/{k}": v for k, v in res.items() if k != "tokens"}, step=at_step)
            append_jsonl(run.exp_dir / "valid.jsonl", {"step": at_step, **res})
            log.info("valid step %d: %s", at_step, " ".join(f"{k} {v:.4f}" for k, v in res.items() if k != "tokens"))
        return res
