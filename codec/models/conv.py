"""Convolutions with EnCodec's padding rules and optional weight norm.

Non-causal convs pad both sides (reflect by default) so a stride-s conv maps T samples to ceil(T / s)
frames; causal convs pad on the left only, so an output never depends on later inputs. Transposed
convs trim what the padding of their mirror conv added. Weight norm is a parametrization that
`fold_weight_norm` removes for inference (one plain weight, no per-call recomputation).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


def _apply_norm(module: nn.Module, norm: str) -> nn.Module:
    if norm == "weight_norm":
        return weight_norm(module)
    if norm == "none":
        return module
    raise ValueError(f"unknown norm {norm!r} (expected 'weight_norm' or 'none')")


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Replace every weight-norm parametrization by its current weight (in place); returns module.

    Meant for a deepcopy of a trainable model. Not `parametrize.remove_parametrizations`: a deepcopy
    shares the generated `Parametrized*` class with the original, and removal deletes the `weight`
    property from that shared class, which broke the original model (its `.weight` raised
    AttributeError, so a second Codec of the same model failed). Here each module gets back its
    plain base class and its own weight Parameter; no class is mutated.
    """
    for m in module.modules():
        if not parametrize.is_parametrized(m, "weight"):
            continue
        if len(m.parametrizations) != 1:
            raise ValueError(f"{type(m).__name__}: only a weight parametrization can be folded")
        with torch.no_grad():
            w = m.weight.detach().clone()
        plain = type(m).__bases__[0]                 # ParametrizedConv1d -> Conv1d
        del m._modules["parametrizations"]
        m.__class__ = plain
        m.register_parameter("weight", nn.Parameter(w, requires_grad=False))
    return module


def extra_padding_for_conv1d(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
    """Right padding so the last window is complete and the output has ceil(length / stride) frames."""
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return max(0, ideal_length - length)


def pad1d(x: torch.Tensor, paddings: tuple[int, int], mode: str = "reflect") -> torch.Tensor:
    """F.pad that also reflects inputs shorter than the padding (zero-extends them first)."""
    left, right = paddings
    if mode == "reflect":
        length = x.shape[-1]
        max_pad = max(left, right)
        extra = 0
        if length <= max_pad:
            extra = max_pad - length + 1
            x = F.pad(x, (0, extra))
        padded = F.pad(x, paddings, mode)
        return padded[..., : padded.shape[-1] - extra]
    return F.pad(x, paddings, mode)


class SConv1d(nn.Module):
    """Conv1d with same-length (stride 1) or ceil(T / stride) output, causal or not.  [B, C, T]"""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, causal: bool = False, norm: str = "weight_norm",
                 pad_mode: str = "reflect", bias: bool = True):
        super().__init__()
        self.conv = _apply_norm(nn.Conv1d(in_channels, out_channels, kernel_size, stride,
                                          dilation=dilation, bias=bias), norm)
        self.causal = causal
        self.pad_mode = pad_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        kernel = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
        stride = conv.stride[0]
        padding_total = kernel - stride
        extra = extra_padding_for_conv1d(x.shape[-1], kernel, stride, padding_total)
        if self.causal:
            paddings = (padding_total, extra)
        else:
            right = padding_total // 2
            paddings = (padding_total - right, right + extra)
        # A 1x1 stride-1 conv (half the convs of the residual units) needs no padding: F.pad would
        # still copy the activation and, in training, copy its gradient back (~10% of a mini step).
        if paddings != (0, 0):
            x = pad1d(x, paddings, self.pad_mode)
        return conv(x)


class SConvTranspose1d(nn.Module):
    """ConvTranspose1d that outputs exactly T * stride samples.  [B, C, T] -> [B, C', T * stride]"""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 causal: bool = False, norm: str = "weight_norm"):
        super().__init__()
        self.convtr = _apply_norm(nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride), norm)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.convtr.kernel_size[0]
        stride = self.convtr.stride[0]
        padding_total = kernel - stride
        y = self.convtr(x)
        if self.causal:
            # Trim everything on the right: the output at t never waits for frames after t.
            right, left = padding_total, 0
        else:
            right = padding_total // 2
            left = padding_total - right
        return y[..., left: y.shape[-1] - right]


class SLSTM(nn.Module):
    """Unidirectional LSTM over [B, C, T] with a skip connection (causal in time)."""

    def __init__(self, dimension: int, num_layers: int = 2, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.lstm = nn.LSTM(dimension, dimension, num_layers)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
                return_state: bool = False):
        """`state` carries (h, c) between chunks of one long signal, so chunked = one pass."""
        seq = x.permute(2, 0, 1)            # [T, B, C]
        y, new_state = self.lstm(seq, state)
        if self.skip:
            y = y + seq
        y = y.permute(1, 2, 0)
        return (y, new_state) if return_state else y


# ------------------------------------------------------------------ inference-only, channels-last
# The inference copy (codec.inference.optimize.optimize_for_inference) keeps every activation [B, C, T] in
# *channels-last memory* (strides (T*C, 1, C), i.e. [B, T, C] in memory). oneDNN's convolutions run
# natively on that layout (as conv2d NHWC over [B, C, 1, T]), whereas a contiguous [B, C, T] conv1d
# pays a reorder to a blocked layout and back around every call: measured 2-3x per layer on CPU.
# In this layout a polyphase transposed conv is interleaved for free (a view), and the LSTM's
# [T, B, C] input is a view for B = 1. Elementwise ops (ELU, add) keep their input's strides.
def as_channels_last(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T] (any strides) -> the same values with strides (T*C, 1, C); no copy if already so."""
    return x.transpose(1, 2).contiguous().transpose(1, 2)


def _cl_pad(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """Pad the time axis of a channels-last [B, C, T]; returns channels-last [B, C, T + left + right].

    Works on the [B, T, C] view, where padding time means whole rows, copied into one new buffer
    (torch.cat of the same pieces measured 5x slower on CPU; a cat along the last dim of the
    [B, C, 1, T] view, a strided copy, slower still). Reflect: the values of F.pad(..., "reflect").
    """
    n = x.shape[-1]
    if mode != "reflect" or n <= max(left, right):     # rare: zero/replicate modes, very short inputs
        return as_channels_last(pad1d(x.contiguous(), (left, right), mode))
    rows = x.transpose(1, 2)                            # [B, T, C], contiguous
    out = rows.new_empty(rows.shape[0], n + left + right, rows.shape[2])
    out[:, left:left + n] = rows
    if left:
        out[:, :left] = rows[:, 1:left + 1].flip(1)
    if right:
        out[:, left + n:] = rows[:, n - right - 1:n - 1].flip(1)
    return out.transpose(1, 2)


class CLConv1d(nn.Module):
    """An SConv1d (same padding rule) run as a channels-last conv2d.  [B, C, T] -> [B, C', T']"""

    def __init__(self, m: SConv1d):
        super().__init__()
        c = m.conv
        self.register_buffer("weight", c.weight.detach()[:, :, None, :].contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", None if c.bias is None else c.bias.detach().clone())
        self.kernel = (c.kernel_size[0] - 1) * c.dilation[0] + 1
        self.stride, self.dilation = c.stride[0], c.dilation[0]
        self.causal, self.pad_mode = m.causal, m.pad_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding_total = self.kernel - self.stride
        extra = extra_padding_for_conv1d(x.shape[-1], self.kernel, self.stride, padding_total)
        if self.causal:
            left, right = padding_total, extra
        else:
            right = padding_total // 2
            left, right = padding_total - right, right + extra
        x = as_channels_last(x)
        if left or right:
            x = _cl_pad(x, left, right, self.pad_mode)
        y = F.conv2d(x[:, :, None], self.weight, self.bias, stride=(1, self.stride), dilation=(1, self.dilation))
        return y[:, :, 0]


class CLPolyphaseConvTranspose1d(nn.Module):
    """SConvTranspose1d (kernel 2s, stride s) as one channels-last conv; the interleave is a view.

    Raw output y[m*s + p] = W[p]^T x[m] + W[p + s]^T x[m - 1], so a kernel-2 conv with s * C_out
    channels over x (one zero on each side) computes every phase p at once. Its channels are ordered
    phase-major (p * C_out + c), so in channels-last memory [T + 1, s, C_out] already *is* the
    interleaved output [(T + 1) * s, C_out]. Then the SConvTranspose1d trim is applied.
    (PyTorch's CPU transposed convolution is much slower than its convolution: col2im and copies.)
    """

    def __init__(self, m: SConvTranspose1d):
        super().__init__()
        ct = m.convtr
        s, k = ct.stride[0], ct.kernel_size[0]
        if k != 2 * s or ct.padding[0] or ct.output_padding[0] or ct.dilation[0] != 1 or ct.groups != 1:
            raise ValueError("CLPolyphaseConvTranspose1d needs kernel = 2 * stride, no padding/groups")
        w = ct.weight.detach()                                   # [C_in, C_out, 2s]
        c_in, c_out = w.shape[0], w.shape[1]
        taps = torch.stack([w[:, :, s:], w[:, :, :s]], dim=-1)    # [C_in, C_out, s, 2]: x[m-1], x[m]
        weight = taps.permute(2, 1, 0, 3).reshape(s * c_out, c_in, 1, 2)
        self.register_buffer("weight", weight.contiguous(memory_format=torch.channels_last))
        bias = ct.bias.detach() if ct.bias is not None else torch.zeros(c_out)
        self.register_buffer("bias", bias.repeat(s))
        self.stride, self.c_out, self.causal = s, c_out, m.causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, B, T = self.stride, x.shape[0], x.shape[-1]
        x = _cl_pad(as_channels_last(x), 1, 1, "constant")
        y = F.conv2d(x[:, :, None], self.weight, self.bias)                 # [B, s*C_out, 1, T+1] channels-last
        y = y.permute(0, 2, 3, 1).reshape(B, (T + 1) * s, self.c_out).transpose(1, 2)
        right = s if self.causal else s // 2
        left = 0 if self.causal else s - s // 2
        return y[..., left:y.shape[-1] - right]
