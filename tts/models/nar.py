"""VALL-E's non-autoregressive model: codebook k (2..n_q) of the target from everything before it.

Input, packed per example without padding in between:
    [phonemes ; prompt (sum of the embeddings of all n_q codebooks) ; target (sum of codebooks < k)]
through a bidirectional transformer whose layer norms are adaptive (scale and shift from an
embedding of the stage k). One output head per stage, scored on target positions only.

Stages are numbered by codebook, 1-based: stage k predicts codebook k from codebooks 1..k-1, so
k is in 2..n_q (metrics `acc_k{k}` use the same numbers). In training k is drawn per example with
the torch RNG (`torch.randint`), so a re-seeded step draws the same stages.

Voice (ModelConfig.voice_conditioning): "none" is VALL-E (the prompt is only in the sequence); "global"
adds a learned voice vector, the prompt's summed code embeddings averaged over its frames through a small
MLP, to the stage condition of every adaptive layer norm and to every target frame's input.

Alignment (ModelConfig.nar_alignment): "attention" is VALL-E. "durations" adds to every prompt and target
frame's input the embedding of its phoneme (the text table), of the frames into it and of the frames left
(the AR's FrameAlignment over the whole utterance, prompt first), so codebooks 2..n_q know what is said where
without finding it by attention; at synthesis the AR's planned durations give the same (tts.synthesizer).

With model.prompt_code_prior, stage k's logits also get w_k * log(the prompt's own codebook-k code
frequencies), w_k learned: the voice statistic a count model used to beat the NAR, given in closed form.

Positions: the text gets its own sinusoidal positions; the prompt and the target share the audio
positions, the target continuing after the prompt (in prefix mode the prompt IS the beginning of
the same utterance).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..batch import TTSBatch
from ..config import ModelConfig
from .alignment import MAX_PROGRESS, FrameAlignment, read_alignment
from .output import TTSOutput
from .transformer import SinePositions, Transformer, pack, unpack


PRIOR_INIT = 0.5          # the prompt prior's starting weight (a geometric mix with the model's own logits)
PRIOR_SMOOTHING = 0.1     # add-alpha smoothing of the prompt's code counts


class NARModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.n_q < 2:
            raise ValueError(f"NARModel needs n_q >= 2 (it predicts codebooks 2..n_q), got n_q={cfg.n_q}")
        self.cfg = cfg
        d, K, V = cfg.d_model, cfg.n_q, cfg.codebook_size
        self.text_emb = nn.Embedding(cfg.vocab_size, d)
        self.audio_emb = nn.ModuleList(nn.Embedding(V, d) for _ in range(K))    # one table per codebook
        self.stage_emb = nn.Embedding(K - 1, d)                                  # stages 2..K
        self.text_pos = SinePositions(d)
        self.audio_pos = SinePositions(d)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.transformer = Transformer(cfg, adaptive=True)
        self.heads = nn.Parameter(torch.randn(K - 1, V, d) * 0.02)              # one head per stage
        # the global voice vector (model.voice_conditioning = "global"): mean prompt embedding -> MLP
        self.voice = (nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
                      if cfg.voice_conditioning == "global" else None)
        # the prompt's code prior (model.prompt_code_prior): a learned weight per stage
        self.prior_weight = nn.Parameter(torch.full((K - 1,), PRIOR_INIT)) if cfg.prompt_code_prior else None
        # the frame alignment (model.nar_alignment = "durations"): frames into / left of the frame's phoneme
        self.into_emb = nn.Embedding(MAX_PROGRESS, d) if cfg.nar_alignment == "durations" else None
        self.left_emb = nn.Embedding(MAX_PROGRESS, d) if cfg.nar_alignment == "durations" else None
        for e in (self.text_emb, *self.audio_emb, *([self.into_emb, self.left_emb] if self.into_emb else [])):
            nn.init.normal_(e.weight, std=cfg.emb_init_std)     # visible beside the unit-scale positions
        nn.init.normal_(self.stage_emb.weight, std=0.02)          # AdaLN starts near identity

    @property
    def stages(self) -> range:
        return range(2, self.cfg.n_q + 1)

    def _sum_codes(self, codes: torch.Tensor, upto: torch.Tensor) -> torch.Tensor:
        """codes [B, K', T] -> sum over codebooks j < upto[b] (0-based j) of emb_j(codes[b, j]) [B, T, D]."""
        B, _, T = codes.shape
        out = torch.zeros(B, T, self.cfg.d_model, device=codes.device, dtype=self.text_emb.weight.dtype)
        for j in range(int(upto.max())):
            use = (upto > j).to(out.dtype)[:, None, None]
            out = out + self.audio_emb[j](codes[:, j]) * use
        return out

    def voice_vector(self, p_sum: torch.Tensor, prompt_lens: torch.Tensor) -> torch.Tensor:
        """The global voice vector [B, D] from the prompt's summed code embeddings [B, P, D] (an item
        without a prompt gets the MLP of a zero mean)."""
        keep = (torch.arange(p_sum.shape[1], device=p_sum.device)[None, :] < prompt_lens[:, None]).to(p_sum.dtype)
        mean = (p_sum * keep[..., None]).sum(1) / prompt_lens.clamp(min=1)[:, None].to(p_sum.dtype)
        return self.voice(mean)

    def _alignment(self, phonemes: torch.Tensor, durations: Optional[torch.Tensor]) -> Optional[FrameAlignment]:
        if self.cfg.nar_alignment != "durations":
            return None
        return read_alignment(phonemes, durations, "NARModel: model.nar_alignment='durations'")

    def _frame_text(self, align: FrameAlignment, pos: torch.Tensor) -> torch.Tensor:
        """Audio positions pos [B, T] -> what each frame knows of the text: [B, T, D]."""
        ph, into, left = align.at(pos)
        return self.text_emb(ph) + self.into_emb(into) + self.left_emb(left)

    def stage_logits(self, phonemes: torch.Tensor, phoneme_lens: torch.Tensor, prompt: torch.Tensor,
                     prompt_lens: torch.Tensor, codes: torch.Tensor, code_lens: torch.Tensor,
                     stage: torch.Tensor, durations: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits of codebook stage[b] on the target positions: [B, T, codebook_size].

        phonemes [B, L]; prompt [B, >=n_q, P]; codes [B, >=stage-1, T] (codebooks 1..stage-1 are
        read; padding may hold anything, it is zeroed); stage [B] int64 in 2..n_q; durations [B, L]
        (nar_alignment "durations": frames per token over prompt + target, summing to P_b + T_b).
        """
        cfg = self.cfg
        B, T = codes.shape[0], codes.shape[2]
        if int(stage.min()) < 2 or int(stage.max()) > cfg.n_q:
            raise ValueError(f"NARModel: stage must be in 2..{cfg.n_q}, got {stage.tolist()}")
        dev = phonemes.device
        tpos = torch.arange(T, device=dev)[None, :]
        codes = torch.where(tpos[:, None, :] < code_lens[:, None, None], codes.long(), torch.zeros_like(codes, dtype=torch.long))
        P = prompt.shape[2]
        ppos = torch.arange(P, device=dev)[None, :]
        prompt = torch.where(ppos[:, None, :] < prompt_lens[:, None, None], prompt[:, : cfg.n_q].long(),
                             torch.zeros(B, min(cfg.n_q, prompt.shape[1]), P, dtype=torch.long, device=dev))
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= cfg.codebook_size):
            raise ValueError(f"NARModel: codes outside [0, {cfg.codebook_size})")
        if prompt.numel() and (int(prompt.min()) < 0 or int(prompt.max()) >= cfg.codebook_size):
            raise ValueError(f"NARModel: prompt codes outside [0, {cfg.codebook_size})")

        align = self._alignment(phonemes, durations)
        x_text = self.text_emb(phonemes) + self.text_pos(torch.arange(phonemes.shape[1], device=dev))
        cond = self.stage_emb(stage - 2)
        x_tgt = self._sum_codes(codes, stage - 1) + self.audio_pos(tpos + prompt_lens[:, None])
        if align is not None:
            x_tgt = x_tgt + self._frame_text(align, (tpos + prompt_lens[:, None]).expand(B, T))
        if P > 0:
            p_sum = self._sum_codes(prompt, torch.full((B,), cfg.n_q, device=dev))
            x_prompt = p_sum + self.audio_pos(ppos)
            if align is not None:
                x_prompt = x_prompt + self._frame_text(align, ppos.expand(B, P))
        else:
            p_sum = x_prompt = torch.zeros(B, 1, cfg.d_model, device=dev, dtype=x_text.dtype)
        if self.voice is not None:
            v = self.voice_vector(p_sum, prompt_lens)
            cond, x_tgt = cond + v, x_tgt + v[:, None]
        x, valid, starts = pack([(x_text, phoneme_lens), (x_prompt, prompt_lens), (x_tgt, code_lens)])
        S = x.shape[1]
        mask = valid[:, None, None, :] | torch.eye(S, dtype=torch.bool, device=dev)[None, None]
        h = self.transformer(self.emb_drop(x), mask, cond=cond)
        h_tgt = unpack(h, starts[2], T)                                         # [B, T, D]
        w = self.heads[stage - 2]                                               # [B, V, D]
        logits = torch.bmm(h_tgt, w.transpose(1, 2))
        if self.prior_weight is not None:
            logits = logits + self.prior_weight[stage - 2][:, None, None] * self.prompt_log_prior(prompt, prompt_lens, stage)[:, None]
        return logits

    def prompt_log_prior(self, prompt: torch.Tensor, prompt_lens: torch.Tensor, stage: torch.Tensor) -> torch.Tensor:
        """log of the prompt's own codebook-stage[b] code frequencies (add-PRIOR_SMOOTHING): [B, V]. Without a
        prompt the prior is uniform, which leaves the softmax unchanged."""
        B, _, P = prompt.shape
        V = self.cfg.codebook_size
        codes = prompt.gather(1, (stage - 1)[:, None, None].expand(B, 1, P))[:, 0]     # [B, P]
        keep = (torch.arange(P, device=prompt.device)[None, :] < prompt_lens[:, None]).to(torch.float32)
        counts = torch.zeros(B, V, device=prompt.device).scatter_add_(1, codes, keep) + PRIOR_SMOOTHING
        return torch.log(counts / counts.sum(1, keepdim=True))

    def forward(self, batch: TTSBatch, stage: Optional[int] = None, return_logits: bool = False) -> TTSOutput:
        """Loss of one stage per example: drawn with torch.randint (stage=None) or the given stage 2..n_q."""
        cfg = self.cfg
        batch.validate(cfg.n_q)
        B = batch.batch_size
        dev = batch.phonemes.device
        if stage is None:
            st = torch.randint(2, cfg.n_q + 1, (B,)).to(dev)        # the global CPU RNG: reproducible
        else:
            st = torch.full((B,), int(stage), dtype=torch.long, device=dev)
        logits = self.stage_logits(batch.phonemes, batch.phoneme_lens, batch.prompt, batch.prompt_lens,
                                   batch.codes, batch.code_lens, st, batch.durations)   # [B, T, V]
        T = batch.codes.shape[2]
        scored = torch.arange(T, device=dev)[None, :] < batch.code_lens[:, None]
        tgt = batch.codes.long().gather(1, (st - 1)[:, None, None].expand(B, 1, T))[:, 0]   # [B, T]
        lg = logits[scored]
        loss = F.cross_entropy(lg.float(), tgt[scored])
        with torch.no_grad():
            hit = (logits.argmax(-1) == tgt) & scored
            metrics: dict = {"acc": (hit.sum() / scored.sum().clamp(min=1)).detach(),
                             "n_tokens": float(scored.sum()), "n_phonemes": float(batch.phoneme_lens.sum())}
            for k in sorted(set(st.tolist())):
                rows = st == k
                metrics[f"acc_k{k}"] = (hit[rows].sum() / scored[rows].sum().clamp(min=1)).detach()
                metrics[f"n_tokens_k{k}"] = float(scored[rows].sum())
        return TTSOutput(loss=loss, metrics=metrics, logits=lg.detach() if return_logits else None)


__all__ = ["NARModel"]
