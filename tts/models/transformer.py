"""The transformer both VALL-E models share: compact pre-LN blocks over scaled_dot_product_attention.

Why own blocks and not transformers' Llama blocks (measured, benchmarks/results/tts_decode.md): at
the paper size a cached decoding step streams every weight once, so its speed is set by memory
bandwidth plus per-layer Python overhead. The own blocks do one fused QKV matmul, one SDPA call and a
2-matrix GELU FFN per layer, write keys/values in place into a preallocated cache (no torch.cat that
re-copies the whole cache every token) and can drop finished sequences from the cache with one
index_select. Llama's blocks add rotary embeddings, RMSNorm and SwiGLU (3 matrices) and a
DynamicCache that concatenates; they have no adaptive layer norm (the NAR needs it) and no prefix-LM
mask without building 4-D masks by hand. Measured (benchmarks/bench_tts_decode.py; same width,
depth, heads and parameter count; cached step; 2 threads on a shared box): at the paper size both
are weight-streaming bound and equal within noise (interleaved at load ~3.9: 62.7/71.0 ms own vs
68.2/70.8 ms Llama at 150 tokens); at the mini size, where per-op dispatch dominates, the own blocks
were 2.4-3.7x faster in every run (e.g. 87 vs 321 ms, 111 vs 264 ms under load). Equal where it
matters least, faster where dispatch matters, and they carry the NAR's AdaLN and the prefix-LM
mask: so the models use them. Table: benchmarks/results/tts_decode.md.

Positions are sinusoidal with a learned scale per stream (text, audio), added to the embeddings:
no table to outgrow (a prompt + target longer than anything seen in training still gets positions),
no parameters, and a KV cache needs only each sequence's next position index.

Shapes: x [B, S, D]; attention masks are boolean [B, 1, S, S_kv] (True = may attend) or None.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig


class SinePositions(nn.Module):
    """alpha * [sin(p w), cos(p w)] for integer positions p (any shape) -> [..., D]."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"sinusoidal positions need an even width, got {dim}")
        inv = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
        self.register_buffer("inv_freq", inv, persistent=False)
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        ang = pos.to(self.inv_freq.dtype)[..., None] * self.inv_freq
        return self.alpha * torch.cat([ang.sin(), ang.cos()], dim=-1)


class AdaLayerNorm(nn.Module):
    """LayerNorm whose scale and shift come from a condition vector (the NAR's stage embedding)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.mod = nn.Linear(dim, 2 * dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.mod(cond).unsqueeze(1).chunk(2, dim=-1)     # [B, 1, D] each
        return self.norm(x) * (1.0 + scale) + shift


@dataclass
class KVCache:
    """Preallocated keys/values per layer, [B, H, S_max, Dh], filled up to `length`.

    `key_valid` [B, S_max] marks real (not left-padding) positions. `keep(rows)` drops finished
    sequences so that they stop costing compute.
    """
    k: list[torch.Tensor]
    v: list[torch.Tensor]
    key_valid: torch.Tensor
    length: int = 0
    has_padding: bool = False       # any invalid key among the filled ones (then steps need a mask)

    @classmethod
    def empty(cls, n_layers: int, batch: int, n_heads: int, max_len: int, head_dim: int,
              dtype: torch.dtype, device: torch.device) -> "KVCache":
        def z():
            return torch.zeros(batch, n_heads, max_len, head_dim, dtype=dtype, device=device)
        return cls([z() for _ in range(n_layers)], [z() for _ in range(n_layers)],
                   torch.zeros(batch, max_len, dtype=torch.bool, device=device))

    @property
    def capacity(self) -> int:
        return int(self.key_valid.shape[1])

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only batch rows `rows` (int64 [B']); copies the filled part once."""
        self.k = [t[rows] for t in self.k]
        self.v = [t[rows] for t in self.v]
        self.key_valid = self.key_valid[rows]
        self.has_padding = not bool(self.key_valid[:, : self.length].all())


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.attn_dropout = cfg.dropout
        # set to a list to collect attention probabilities [B, H, S, S_kv] (diagnostics only: slow path)
        self.captured: Optional[list[torch.Tensor]] = None

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor], cache: Optional[KVCache] = None,
                layer: int = 0) -> torch.Tensor:
        B, S, D = x.shape
        q, k, v = self.qkv(x).view(B, S, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if cache is not None:
            n = cache.length
            if n + S > cache.capacity:
                raise RuntimeError(f"KV cache full: {n} + {S} > capacity {cache.capacity}")
            cache.k[layer][:, :, n:n + S] = k      # in place: no re-copy of the whole cache per token
            cache.v[layer][:, :, n:n + S] = v
            k = cache.k[layer][:, :, :n + S]
            v = cache.v[layer][:, :, :n + S]
        if self.captured is not None:
            w = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            if mask is not None:
                w = w.masked_fill(~mask, float("-inf"))
            self.captured.append(w.softmax(-1).detach())
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, S, D))


class Block(nn.Module):
    """Pre-LN block: x + attn(norm(x)); x + ffn(norm(x)). Norms are adaptive when `adaptive`."""

    def __init__(self, cfg: ModelConfig, adaptive: bool):
        super().__init__()
        d = cfg.d_model
        self.adaptive = adaptive
        self.norm1 = AdaLayerNorm(d, cfg.norm_eps) if adaptive else nn.LayerNorm(d, eps=cfg.norm_eps)
        self.norm2 = AdaLayerNorm(d, cfg.norm_eps) if adaptive else nn.LayerNorm(d, eps=cfg.norm_eps)
        self.attn = SelfAttention(cfg)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_mult * d), nn.GELU(approximate="tanh"),
                                 nn.Linear(cfg.ffn_mult * d, d))
        self.drop = nn.Dropout(cfg.dropout)

    def _norm(self, norm: nn.Module, x: torch.Tensor, cond: Optional[torch.Tensor]) -> torch.Tensor:
        return norm(x, cond) if self.adaptive else norm(x)

    def forward(self, x, mask, cond=None, cache=None, layer=0):
        x = x + self.drop(self.attn(self._norm(self.norm1, x, cond), mask, cache, layer))
        return x + self.drop(self.ffn(self._norm(self.norm2, x, cond)))


class Transformer(nn.Module):
    """A stack of Blocks plus a final norm. `adaptive=True` conditions every norm on `cond` [B, D]."""

    def __init__(self, cfg: ModelConfig, adaptive: bool = False):
        super().__init__()
        self.cfg = cfg
        self.adaptive = adaptive
        self.blocks = nn.ModuleList(Block(cfg, adaptive) for _ in range(cfg.n_layers))
        self.norm = AdaLayerNorm(cfg.d_model, cfg.norm_eps) if adaptive else nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor], cond: Optional[torch.Tensor] = None,
                cache: Optional[KVCache] = None) -> torch.Tensor:
        if self.adaptive and cond is None:
            raise ValueError("an adaptive transformer needs `cond` [B, D]")
        for i, blk in enumerate(self.blocks):
            x = blk(x, mask, cond, cache, i)
        if cache is not None:
            cache.length += x.shape[1]
        return self.norm(x, cond) if self.adaptive else self.norm(x)

    def new_cache(self, batch: int, max_len: int, dtype: torch.dtype, device: torch.device) -> KVCache:
        c = self.cfg
        return KVCache.empty(c.n_layers, batch, c.n_heads, max_len, c.d_model // c.n_heads, dtype, device)


def _init_weights(m: nn.Module) -> None:
    # GPT-2-style small normal init; AdaLN modulation starts near identity (scale ~0, shift ~0) but
    # not at exactly zero, so the stage conditions the output from the first step.
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)


def pack(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Concatenate variable-length segments per example without padding in between.

    parts: [(x_i [B, S_i, D], lens_i [B])]; example b becomes x_0[b, :lens_0[b]], x_1[b, :lens_1[b]], ...
    right-padded to the longest total. Returns (packed [B, S, D], valid [B, S] bool, starts) where
    starts[i] [B] is where segment i begins in each row.
    """
    xs = torch.cat([x for x, _ in parts], dim=1)
    B, _, D = xs.shape
    lens = torch.stack([l.to(torch.long) for _, l in parts], dim=1)          # [B, n]
    starts_t = torch.cumsum(lens, dim=1) - lens                              # [B, n]
    total = lens.sum(1)
    S = int(total.max())
    j = torch.arange(S, device=xs.device)[None, :].expand(B, S)              # [B, S]
    offsets = [0]
    for x, _ in parts[:-1]:
        offsets.append(offsets[-1] + x.shape[1])
    src = torch.zeros(B, S, dtype=torch.long, device=xs.device)
    for i in range(len(parts)):
        inside = (j >= starts_t[:, i:i + 1]) & (j < starts_t[:, i:i + 1] + lens[:, i:i + 1])
        src = torch.where(inside, j - starts_t[:, i:i + 1] + offsets[i], src)
    packed = xs.gather(1, src[..., None].expand(B, S, D))
    valid = j < total[:, None]
    return packed, valid, [starts_t[:, i] for i in range(len(parts))]


def unpack(h: torch.Tensor, start: torch.Tensor, length: int) -> torch.Tensor:
    """h [B, S, D] -> [B, length, D] rows h[b, start[b] : start[b] + length] (clamped at the end)."""
    B, S, D = h.shape
    idx = (start[:, None] + torch.arange(length, device=h.device)[None, :]).clamp(max=S - 1)
    return h.gather(1, idx[..., None].expand(B, length, D))


__all__ = ["SinePositions", "AdaLayerNorm", "KVCache", "SelfAttention", "Block", "Transformer", "pack", "unpack"]
