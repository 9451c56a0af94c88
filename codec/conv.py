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
    """Replace every weight-norm parametrization by its current weight (in place); returns module."""
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
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
            x = pad1d(x, (padding_total, extra), self.pad_mode)
        else:
            right = padding_total // 2
            left = padding_total - right
            x = pad1d(x, (left, right + extra), self.pad_mode)
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
