"""The TTS models' validation during training: teacher-forced loss and top-1 accuracy per codebook.

Every rank validates its share of the dev batches and the sums are reduced, so no rank waits in a
collective while another validates (the multi-GPU hang some VALL-E toolkits have). The AR's
validation also measures how much the text helps (the same codes scored with another utterance's
phonemes) and, on the main process, the alignment its attention shows (tts.diagnostics).
"""
from __future__ import annotations

import logging

import torch

from core.io import append_jsonl

from .batch import TTSBatch
from .config import Part
from .diagnostics import attention_summary, plot_attention, shuffled_text

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


@torch.no_grad()
def validate(model: torch.nn.Module, batches: list[TTSBatch], part: Part, n_q: int, accelerator,
             device) -> dict:
    """Teacher-forced loss and top-1 accuracy per codebook on this rank's batches, reduced over ranks.

    Every rank calls this (with possibly no batches): only the final reduce is a collective.
    AR: codebook 1. NAR: every stage 2..n_q on every batch (not drawn)."""
    was = model.training
    model.eval()
    ks = codebooks(part, n_q)
    sums = torch.zeros(1 + 2 * len(ks), dtype=torch.float64)     # [loss*tokens, hits_k, n_k ...]
    # text gain (AR): [code CE*tokens, hits, CE*tokens with shuffled text, hits, tokens] over batches of >= 2
    gain = torch.zeros(5, dtype=torch.float64)
    dur = torch.zeros(2, dtype=torch.float64)                       # [MSE of log(1 + frames) * tokens, tokens]
    tokens = 0.0
    for batch in batches:
        batch = batch.to(device)
        for i, k in enumerate(ks):
            out = model(batch, stage=None if part == "ar" else k)
            n = float(out.metrics["n_tokens"])
            # the code cross-entropy (comparable with the baselines' NLL); a duration loss is reported apart
            sums[0] += float(out.metrics.get("code_loss", out.loss)) * n
            if "dur_mse" in out.metrics:
                dur[0] += float(out.metrics["dur_mse"]) * float(out.metrics["n_phonemes"])
                dur[1] += float(out.metrics["n_phonemes"])
            sums[1 + 2 * i] += float(out.metrics["acc"]) * n
            sums[2 + 2 * i] += n
            tokens += n
            if part == "ar" and batch.batch_size > 1:
                wrong = model(shuffled_text(batch))
                for j, o in enumerate((out, wrong)):
                    gain[2 * j] += float(o.metrics.get("code_loss", o.loss)) * n
                    gain[2 * j + 1] += float(o.metrics["acc"]) * n
                gain[4] += n
    model.train(was)
    total = accelerator.reduce(torch.cat([sums, gain, dur, torch.tensor([tokens], dtype=torch.float64)]).to(device),
                               "sum").cpu()
    res = {"loss": float(total[0] / total[-1]) if total[-1] else float("nan"), "tokens": float(total[-1])}
    for i, k in enumerate(ks):
        if total[2 + 2 * i]:
            res[f"acc_k{k}"] = float(total[1 + 2 * i] / total[2 + 2 * i])
    g = total[len(sums):len(sums) + 5]
    if g[4]:
        res["text_gain_nats"] = float((g[2] - g[0]) / g[4])      # CE with another text minus CE with its own
        res["text_gain_top1"] = float((g[1] - g[3]) / g[4])
        res["shuffled_acc_k1"] = float(g[3] / g[4])
    d = total[len(sums) + 5:len(sums) + 7]
    if d[1]:
        res["dur_mse"] = float(d[0] / d[1])
    return res


class TTSValidation:
    """The validation of one run (`run`: core.training.TrainingRun) on this rank's dev `batches`:
    calling it at a step (on every rank: it reduces) appends a line to exp_dir/valid.jsonl, logs the
    scores to TensorBoard under valid/ and, for the AR, draws exp_dir/attention.png."""

    def __init__(self, run, model: torch.nn.Module, batches: list[TTSBatch], part: Part, n_q: int,
                 enabled: bool) -> None:
        self.run, self.model, self.batches, self.part, self.n_q = run, model, batches, part, n_q
        self.enabled = enabled          # False without a dev dump

    def __call__(self, at_step: int) -> dict:
        run = self.run
        if not self.enabled:
            return {}
        res = validate(self.model, self.batches, self.part, self.n_q, run.accelerator, run.device)
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
