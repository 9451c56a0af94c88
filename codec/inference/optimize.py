"""Inference-only rewrites of a folded eval copy of the codec (codec/api.py's InferenceEngine applies them).

- `optimize_for_inference`: every activation in channels-last memory, convolutions as oneDNN NHWC
  conv2d, transposed convs as polyphase convs whose interleave is a view (codec.models.conv.CLConv1d,
  CLPolyphaseConvTranspose1d);
- `apply_precision`: optionally the bulk of the network in bfloat16 (Codec(precision="bf16"));
- `FusedQuantizer`: the residual quantizer with per-stage constants precomputed, one matmul a stage.

Receptive fields (codec.inference.streaming.measure_reach) must be measured before these rewrites.
"""
from __future__ import annotations

import logging
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from ..models.istft_decoder import ISTFTHead

logger = logging.getLogger(__name__)


def optimize_for_inference(model: nn.Module) -> nn.Module:
    """Swap the convolutions of a folded eval copy for channels-last equivalents (in place).

    SConv1d -> codec.models.conv.CLConv1d, SConvTranspose1d (kernel 2s) -> CLPolyphaseConvTranspose1d: same
    padding rules and the same values up to float rounding, every activation in channels-last
    memory (see codec.models.conv). Measure receptive fields (`measure_reach`) before: the probes need the
    plain stacks. Returns model.
    """
    from ..models.conv import CLConv1d, CLPolyphaseConvTranspose1d, SConv1d, SConvTranspose1d
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SConv1d):
                setattr(parent, name, CLConv1d(child))
            elif isinstance(child, SConvTranspose1d):
                ct = child.convtr
                if ct.kernel_size[0] == 2 * ct.stride[0] and not ct.padding[0] and ct.groups == 1:
                    setattr(parent, name, CLPolyphaseConvTranspose1d(child))
    return model


# ---------------------------------------------------------------------------------- reduced precision
Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


class Cast(nn.Module):
    """Cast activations to `dtype` (a stage boundary between float32 and bfloat16 layers)."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)

    def extra_repr(self) -> str:
        return str(self.dtype)


def apply_precision(model: nn.Module, precision: Precision) -> nn.Module:
    """Run the bulk of a folded, optimized inference copy in `precision` (in place); returns model.

    "fp32": unchanged. "bf16": every convolution between the first and the last, and both LSTMs, in
    bfloat16 (oneDNN's AVX512-BF16 / AMX kernels on CPUs that have them, about 2x the float32 speed
    for these memory-bound layers). Kept in float32, because each would put bf16's 8-bit mantissa
    (about -50 dB) straight onto the signal or the codes: the encoder's first conv (it sees the
    waveform), the encoder's `post` and the quantizer (codes are argmax decisions on z), the
    decoder's `pre`, and the decoder's last ELU + conv (it writes the waveform).
    Layout: enc.pre = [conv fp32, Cast(bf16), bf16...], enc.lstm bf16, enc.post = [Cast(fp32), ...];
    dec.pre = [conv fp32, Cast(bf16)], dec.lstm bf16, dec.post = [bf16..., Cast(fp32), ELU, conv]
    (iSTFT decoder: dec.post = [LayerNorm and ConvNeXt blocks bf16..., Cast(fp32), ISTFTHead]).
    Receptive fields do not depend on dtype: measure them before calling this.
    """
    if precision == "fp32":
        return model
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r} (expected one of {PRECISIONS})")
    low = torch.bfloat16
    if not torch.backends.mkldnn.is_available() or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        logger.warning("bf16 inference requested but this CPU has no native bf16 support: "
                       "it will be correct but probably slower than fp32")
    enc, dec = model.encoder, model.decoder
    pre = list(enc.pre)
    enc.pre = nn.Sequential(pre[0], Cast(low), *[m.to(low) for m in pre[1:]])
    enc.post = nn.Sequential(Cast(torch.float32), *enc.post)
    dec.pre = nn.Sequential(dec.pre, Cast(low))
    post = list(dec.post)
    if post and isinstance(post[-1], ISTFTHead):
        # iSTFT decoder: its ConvNeXt blocks in bf16; the head (LayerNorm, the Linear to log-magnitudes
        # and phases, the FFT) writes the waveform and stays float32, like SEANet's last ELU + conv.
        tail = 1
    elif len(post) >= 2 and isinstance(post[-2], nn.ELU):
        tail = 2
    else:
        raise ValueError("decoder post must end with ELU + conv (SEANet) or an ISTFTHead")
    # an ISTFTStack stays one (its forward passes F0 to the head and it carries the harmonic source's state)
    stack = type(dec.post) if tail == 1 else nn.Sequential
    dec.post = stack(*[m.to(low) for m in post[:-tail]], Cast(torch.float32), *post[-tail:])
    for lstm in (enc.lstm, dec.lstm):
        if lstm is not None:
            lstm.to(low)
    return model


# ------------------------------------------------------------------------------------ fused quantizer
class FusedQuantizer(nn.Module):
    """Inference-only residual quantizer: per-stage constants precomputed, one matmul per stage.

    NDVQ scores of stage i: [z, z*z] @ [mu/var, -1/(2 var)]^T + c, c = -1/2 sum(mu^2/var + logvar)
    (the same argmax as `gaussian_log_likelihood_scores`). RVQ: z @ e^T - |e|^2 / 2. Decoding gathers
    from one stacked table [n_q * K, D] and sums over stages.
    """

    def __init__(self, quantizer: nn.Module):
        super().__init__()
        layers = list(quantizer.layers)
        ws, cs, tables = [], [], []
        with torch.no_grad():
            for layer in layers:
                if hasattr(layer, "logvar"):          # NormalCodebook
                    mu, logvar = layer.mu.detach().float(), layer.logvar.detach().float()
                    inv_var = torch.exp(-logvar)
                    ws.append(torch.cat([mu * inv_var, -0.5 * inv_var], dim=1))
                    cs.append(-0.5 * ((mu * mu * inv_var).sum(1) + logvar.sum(1)))
                    tables.append(mu)
                else:                                 # EuclideanCodebook
                    e = layer.embed.detach().float()
                    ws.append(torch.cat([e, torch.zeros_like(e)], dim=1))
                    cs.append(-0.5 * e.pow(2).sum(1))
                    tables.append(e)
        self.squared = any(hasattr(layer, "logvar") for layer in layers)
        self.register_buffer("w_t", torch.stack(ws).transpose(1, 2).contiguous())   # [n_q, 2D, K]
        self.register_buffer("const", torch.stack(cs))                              # [n_q, K]
        self.register_buffer("table", torch.cat(tables).contiguous())               # [n_q*K, D]
        self.n_q, self.codebook_size = len(layers), layers[0].codebook_size
        self.dimension = self.table.shape[1]

    def encode(self, z: torch.Tensor, n_q: int) -> torch.Tensor:
        """z [B, D, T] -> codes [B, n_q, T] int64."""
        B, D, T = z.shape
        r = z.transpose(1, 2).reshape(B * T, D).float()
        codes = []
        K = self.codebook_size
        for i in range(n_q):
            if self.squared:
                scores = torch.addmm(self.const[i], torch.cat([r, r * r], dim=1), self.w_t[i])
            else:
                scores = torch.addmm(self.const[i], r, self.w_t[i, :D])
            idx = scores.argmax(1)
            codes.append(idx)
            if i + 1 < n_q:
                r = r - F.embedding(idx + i * K, self.table)
        return torch.stack(codes, 0).reshape(n_q, B, T).transpose(0, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K', T] (K' <= n_q) -> latent [B, D, T]."""
        B, Kq, T = codes.shape
        if Kq > self.n_q:
            raise ValueError(f"codes have {Kq} codebooks but the codec has {self.n_q}")
        if Kq == 0:
            raise ValueError("codes have no codebook")
        offs = torch.arange(Kq, device=codes.device)[None, :, None] * self.codebook_size
        v = F.embedding(codes.long() + offs, self.table)         # [B, K', T, D]
        return v.sum(1).transpose(1, 2)
