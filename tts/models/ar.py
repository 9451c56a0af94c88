"""VALL-E's autoregressive model: codebook 1 of the codes from the phonemes.

One decoder-only transformer over the sequence [phonemes ; <bos> c_1 .. c_T] of each example
(packed: no padding between the two parts), with separate embeddings and separate sinusoidal
positions for the phonemes and the audio. The audio vocabulary is the codebook's codes plus
<eos> (= codebook_size) and <bos> (= codebook_size + 1); the head predicts codes + <eos>.

Attention (ModelConfig.ar_attention): "prefix_lm" (default) lets the phonemes attend to each other
both ways and the audio attend causally to all phonemes and to earlier audio; "causal" is a plain
causal LM. We default to prefix-LM because the whole text is known before any audio is produced: a
phoneme's representation may then use its right context (the next words), which is what the
alignment needs, at no cost in decoding (the phonemes are encoded once in the prefill).

Training: the loss is the mean cross-entropy over audio positions only: from
<bos> c_1 .. c_T predict c_1 .. c_T <eos>. The AR ignores `batch.prompt` (in prefix mode `codes`
is the whole utterance and the prompt is implicitly its beginning).

Inference primitives (used by tts.models.decoding): `prefill` encodes [phonemes ; <bos> prompt]
for a batch (left-padded so every sequence's next token lands in the same cache column) and
`step` appends one audio token per sequence.

Alignment (ModelConfig.ar_alignment): "attention" is VALL-E as published. "durations" adds to the
input of every audio position t the embedding of the phoneme that frame t belongs to (the same table
as the text), of how far into that phoneme it is and of how many frames of it remain (`FrameAlignment`),
so the model knows where it is in the text instead of finding it by attention; a linear head on the
text positions predicts each token's log(1 + frames) (`predict_durations`), and the length is the
sum of the durations (no <eos>). Why: the attention AR did not use the text at all within the
recipe's budget (text gain < 0.08 nats a frame after 1,000 steps; README, "Alignment").
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..batch import TTSBatch
from ..config import ModelConfig
from .alignment import MAX_PROGRESS, FrameAlignment, read_alignment
from .output import TTSOutput
from .transformer import KVCache, SinePositions, Transformer, pack, unpack


class ARModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.text_emb = nn.Embedding(cfg.vocab_size, d)
        self.audio_emb = nn.Embedding(cfg.codebook_size + 2, d)      # codes, <eos>, <bos>
        self.text_pos = SinePositions(d)
        self.audio_pos = SinePositions(d)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.transformer = Transformer(cfg, adaptive=False)
        nn.init.normal_(self.text_emb.weight, std=cfg.emb_init_std)
        nn.init.normal_(self.audio_emb.weight, std=cfg.emb_init_std)
        if cfg.ar_alignment == "durations":
            self.into_emb = nn.Embedding(MAX_PROGRESS, d)
            self.left_emb = nn.Embedding(MAX_PROGRESS, d)
            for e in (self.into_emb, self.left_emb):
                nn.init.normal_(e.weight, std=cfg.emb_init_std)
            self.duration_head = nn.Linear(d, 1)
        self.head = nn.Linear(d, cfg.codebook_size + 1, bias=False)
        nn.init.normal_(self.head.weight, std=0.02)

    # ------------------------------------------------------------------------------------ pieces
    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """h [..., D] -> [..., codebook_size + 1] (codes + <eos>)."""
        return self.head(h)

    def _embed_text(self, phonemes: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(phonemes.shape[1], device=phonemes.device)
        return self.text_emb(phonemes) + self.text_pos(pos)

    def _embed_audio(self, tokens: torch.Tensor, start: Optional[torch.Tensor] = None,
                     align: Optional[FrameAlignment] = None) -> torch.Tensor:
        """tokens [B, T] -> [B, T, D]; positions start[b] + t (default 0). Position t predicts frame t,
        so with an alignment it also receives frame t's phoneme, frames into it and frames left."""
        pos = torch.arange(tokens.shape[1], device=tokens.device)[None, :]
        if start is not None:
            pos = pos + start[:, None]
        x = self.audio_emb(tokens) + self.audio_pos(pos)
        if align is not None:
            ph, into, left = align.at(pos.expand(tokens.shape[0], -1))
            x = x + self.text_emb(ph) + self.into_emb(into) + self.left_emb(left)
        return x

    def _alignment(self, phonemes: torch.Tensor, durations: Optional[torch.Tensor]) -> Optional[FrameAlignment]:
        if self.cfg.ar_alignment != "durations":
            return None
        return read_alignment(phonemes, durations, "ARModel: model.ar_alignment='durations'")

    def _text_mask(self, L: torch.Tensor, S: int) -> torch.Tensor:
        i = torch.arange(S, device=L.device)
        valid = i[None, :] < L[:, None]
        return self._mask(valid, torch.zeros_like(L), L)

    def predict_durations(self, phonemes: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """phonemes [B, L] (padded), lens [B] -> predicted frames per token [B, L] float (>= 0).

        The text positions never attend to audio (either attention mode), so this text-only pass
        computes exactly the states the duration head was trained on."""
        h = self.transformer(self._embed_text(phonemes), self._text_mask(lens, phonemes.shape[1]))
        return torch.expm1(self.duration_head(h)[..., 0].float()).clamp(min=0)

    def _mask(self, valid_k: torch.Tensor, text_start: torch.Tensor, text_end: torch.Tensor) -> torch.Tensor:
        """[B, 1, S, S] boolean: causal over the row, plus (prefix_lm) all-to-all over the text span.

        Every query keeps at least itself visible, so padded rows never produce NaN.
        """
        B, S = valid_k.shape
        i = torch.arange(S, device=valid_k.device)
        m = i[None, None, :] <= i[None, :, None]                                  # [1, S(q), S(k)]
        if self.cfg.ar_attention == "prefix_lm":
            in_text_k = (i[None, :] >= text_start[:, None]) & (i[None, :] < text_end[:, None])   # [B, S]
            in_text_q = in_text_k
            m = m | (in_text_q[:, :, None] & in_text_k[:, None, :])
        m = m & valid_k[:, None, :]
        m = m | torch.eye(S, dtype=torch.bool, device=valid_k.device)[None]
        return m[:, None]

    # ---------------------------------------------------------------------------------- training
    def forward(self, batch: TTSBatch, stage: Optional[int] = None, return_logits: bool = False) -> TTSOutput:
        """Teacher-forced loss on codebook 1 (+ <eos>). `stage` is accepted for a uniform API and ignored."""
        cfg = self.cfg
        batch.validate(1)
        ph, L = batch.phonemes, batch.phoneme_lens
        T = batch.code_lens
        B, Tmax = batch.codes.shape[0], batch.codes.shape[2]
        t = torch.arange(Tmax + 1, device=ph.device)[None, :]
        c1 = batch.codes[:, 0].long()
        c1 = torch.where(t[:, :Tmax] < T[:, None], c1, torch.zeros_like(c1))  # padding may be anything
        if c1.numel() and (int(c1.min()) < 0 or int(c1.max()) >= cfg.codebook_size):
            raise ValueError(f"ARModel: codes outside [0, {cfg.codebook_size}) in the batch")
        bos = torch.full((B, 1), cfg.bos_id, dtype=torch.long, device=ph.device)
        audio_in = torch.cat([bos, c1], dim=1)                                  # [B, T+1]
        target = torch.cat([c1, torch.zeros_like(bos)], dim=1)
        target = torch.where(t == T[:, None], torch.full_like(target, cfg.eos_id), target)
        align = self._alignment(ph, batch.durations)
        # durations mode: the length is given, so <eos> is never predicted (nor scored)
        scored = t < T[:, None] if align is not None else t <= T[:, None]      # [B, T+1]

        x, valid, starts = pack([(self._embed_text(ph), L), (self._embed_audio(audio_in, align=align), T + 1)])
        mask = self._mask(valid, starts[0], starts[0] + L)
        h = self.transformer(self.emb_drop(x), mask)
        h_audio = unpack(h, starts[1], Tmax + 1)                                # [B, T+1, D]
        logits = self.logits(h_audio[scored])                                   # [N, V+1]
        tgt = target[scored]
        loss = code_loss = F.cross_entropy(logits.float(), tgt)
        extra = {}
        if align is not None:
            in_text = torch.arange(ph.shape[1], device=ph.device)[None, :] < L[:, None]
            pred = self.duration_head(unpack(h, starts[0], ph.shape[1]))[..., 0].float()
            dur_mse = F.mse_loss(pred[in_text], torch.log1p(batch.durations.float())[in_text])
            loss = code_loss + cfg.duration_loss_weight * dur_mse
            extra = {"code_loss": code_loss.detach(), "dur_mse": dur_mse.detach()}
        with torch.no_grad():
            hit = logits.argmax(-1) == tgt
            is_eos = tgt == cfg.eos_id
            metrics = {
                "acc": hit.float().mean().detach(),
                "acc_eos": hit[is_eos].float().mean().detach(),
                "n_tokens": float(tgt.numel()),
                "n_phonemes": float(L.sum()),
                **extra,
            }
        return TTSOutput(loss=loss, metrics=metrics, logits=logits.detach() if return_logits else None)

    # --------------------------------------------------------------------------------- inference
    def prefill(self, phonemes: Sequence[torch.Tensor], prompts: Sequence[torch.Tensor],
                max_new: int, durations: Optional[Sequence[torch.Tensor]] = None
                ) -> tuple[torch.Tensor, KVCache, torch.Tensor, Optional[FrameAlignment]]:
        """Encode [phonemes_b ; <bos> prompt_b] for each b, left-padded; return the next-token logits.

        phonemes: B int64 tensors [L_b]; prompts: B int64 tensors [P_b] (codebook 1; P_b may be 0);
        durations (ar_alignment "durations"): B int64 tensors [L_b], frames per token of prompt + target.
        Returns (logits [B, V+1] float32, cache with room for max_new more tokens, next audio position [B],
        the frame alignment that `step` needs (None in attention mode)).
        """
        device = self.text_emb.weight.device
        B = len(phonemes)
        L = torch.tensor([int(p.numel()) for p in phonemes], device=device)
        P = torch.tensor([int(p.numel()) for p in prompts], device=device)
        if int(L.min()) < 1:
            raise ValueError("ARModel.prefill: every sequence needs at least one phoneme")
        n = L + P + 1
        S = int(n.max())
        pad = S - n                                                             # left padding per row
        text = torch.zeros(B, int(L.max()), dtype=torch.long, device=device)
        audio = torch.full((B, int(P.max()) + 1), self.cfg.bos_id, dtype=torch.long, device=device)
        dur = torch.zeros(B, int(L.max()), dtype=torch.long, device=device)
        for b in range(B):
            text[b, : L[b]] = phonemes[b].to(device)
            audio[b, 1: 1 + P[b]] = prompts[b].to(device)
            if durations is not None:
                dur[b, : L[b]] = durations[b].to(device)
        align = self._alignment(text, dur if durations is not None else None)
        zeros = torch.zeros(B, 1, self.cfg.d_model, device=device, dtype=self.text_emb.weight.dtype)
        x, valid, starts = pack([(zeros.expand(B, int(pad.max()) if int(pad.max()) else 1, -1), pad),
                                 (self._embed_text(text), L), (self._embed_audio(audio, align=align), P + 1)])
        valid = torch.arange(S, device=device)[None, :] >= pad[:, None]
        mask = self._mask(valid, starts[1], starts[1] + L)
        cache = self.transformer.new_cache(B, S + max_new, x.dtype, device)
        cache.key_valid[:, :S] = valid
        cache.has_padding = bool(int(pad.max()) > 0)
        h = self.transformer(x, mask, cache=cache)
        return self.logits(h[:, -1]).float(), cache, P + 1, align

    def step(self, tokens: torch.Tensor, pos: torch.Tensor, cache: KVCache,
             align: Optional[FrameAlignment] = None) -> torch.Tensor:
        """Append audio tokens [B] at audio positions pos [B]; return next-token logits [B, V+1] float32."""
        x = self._embed_audio(tokens[:, None], pos, align=align)
        n = cache.length
        cache.key_valid[:, n] = True
        # Without left padding every key is visible: SDPA's fast path needs no mask.
        mask = cache.key_valid[:, None, None, : n + 1] if cache.has_padding else None
        h = self.transformer(x, mask, cache=cache)
        return self.logits(h[:, -1]).float()

    def full_logits(self, phonemes: torch.Tensor, audio: torch.Tensor,
                    durations: Optional[torch.Tensor] = None) -> torch.Tensor:
        """No-cache reference: phonemes [1, L], audio tokens [1, A] (starting with <bos>), durations [1, L]
        (durations mode) -> logits [A, V+1]."""
        L = torch.tensor([phonemes.shape[1]], device=phonemes.device)
        A = torch.tensor([audio.shape[1]], device=phonemes.device)
        align = self._alignment(phonemes, durations)
        x, valid, starts = pack([(self._embed_text(phonemes), L), (self._embed_audio(audio, align=align), A)])
        h = self.transformer(x, self._mask(valid, starts[0], starts[0] + L))
        return self.logits(h[0, int(L):]).float()


__all__ = ["ARModel", "FrameAlignment", "MAX_PROGRESS"]
