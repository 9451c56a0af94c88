"""Exact inference on pieces of a signal: frame-aligned segments with context, and long files.

The SEANet encoder and decoder are `pre` (convolutions) -> `lstm` (unidirectional) -> `post`
(convolutions). A convolution stack has a finite receptive field, so any output frame can be computed
from a window of the input that holds its whole receptive field; padding at the window's edges then
only touches outputs that are cropped away. The LSTM is causal, so it runs chunk by chunk with its
(h, c) state carried over. Together, chunked processing gives the same numbers as one pass over the
whole signal (up to float rounding of convolutions run on windows of other lengths; in practice
identical codes, see tests/codec/test_chunked.py).

Receptive fields are *measured from the modules* (`measure_reach`): a float64 copy of a stack with
positive weights is differentiated at one output frame; every input sample with a non-zero gradient
is in that frame's receptive field (positive weights and inputs mean no two paths can cancel). The
context used is symmetric, max(left, right), on both sides: reflect padding at the true start of a
signal mirrors the left receptive field to the right (this matters for causal stacks). The iSTFT
decoder (codec/models/istft_decoder.py) has the same pre -> lstm -> post split; its `post` (LayerNorms,
an inverse STFT) declares its receptive field, which the probe could not see through.

Units: every stack maps input "frame blocks" (``in_per_frame`` samples each: the hop for the encoder's
`pre`, 1 for the latent stacks) to output frame blocks (``out_per_frame`` samples: the hop for the
decoder's `post`, else 1). Windows always start on a frame-block boundary, so strided convolutions see
the same phase as in one pass.

Windows are *canonical* (StreamingStack): window k always covers output frames [k*C, (k+1)*C) of a
signal, whatever size the input blocks arrive in, so the floating-point work, and therefore the codes,
are bitwise identical for any block size; codec/api.py runs every item, long or short, through this
path (so batching and chunking never change codes). The default C is 750 frames (10 s at 75 Hz).
The stacks streamed here are those of the inference copy (codec/inference/optimize.py rewrites it after
the receptive fields are measured).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np
import torch
from torch import nn

from ..models.conv import fold_weight_norm


# ------------------------------------------------------------------------------------- receptive field
@dataclass(frozen=True)
class Reach:
    """Input frame blocks that output frame block j depends on: [j - left, j + right]."""
    in_per_frame: int
    out_per_frame: int
    left: int
    right: int


@torch.no_grad()
def _positive_copy(stack: nn.Module) -> nn.Module:
    probe = fold_weight_norm(copy.deepcopy(stack)).double().eval()
    for m in probe.modules():
        if isinstance(m, nn.Conv1d):
            m.weight.fill_(1.0 / (m.weight.shape[1] * m.weight.shape[2]))
        elif isinstance(m, nn.ConvTranspose1d):
            m.weight.fill_(1.0 / (m.weight.shape[0] * m.weight.shape[2]))
        elif isinstance(m, nn.Linear):
            m.weight.fill_(1.0 / m.weight.shape[1])
        if getattr(m, "bias", None) is not None and isinstance(m.bias, torch.Tensor):
            m.bias.zero_()
    return probe


def measure_reach(stack: nn.Module, in_channels: int, in_per_frame: int, out_per_frame: int,
                  start: int = 8, limit: int = 4096) -> Reach:
    """Measure a convolution stack's receptive field in frame blocks (see module docstring).

    A stack with a `receptive_field()` method (codec.models.istft_decoder.ISTFTStack, whose LayerNorms and
    iSTFT the positive-weight probe cannot see through) declares (left, right) instead.
    """
    declared = getattr(stack, "receptive_field", None)
    if callable(declared):
        r = max(declared())             # symmetric, as measured reaches (reflect padding at edges)
        return Reach(in_per_frame, out_per_frame, r, r)
    with torch.inference_mode(False), torch.enable_grad():
        return _measure_reach(stack, in_channels, in_per_frame, out_per_frame, start, limit)


def _measure_reach(stack, in_channels, in_per_frame, out_per_frame, start, limit) -> Reach:
    probe = _positive_copy(stack)
    half = start
    while half <= limit:
        n = 2 * half + 1
        x = torch.ones(1, in_channels, n * in_per_frame, dtype=torch.float64, requires_grad=True)
        y = probe(x)
        y[..., half * out_per_frame:(half + 1) * out_per_frame].sum().backward()
        idx = torch.nonzero(x.grad.abs().sum(1)[0] > 0).flatten()
        lo, hi = int(idx.min()) // in_per_frame, int(idx.max()) // in_per_frame
        if lo > 0 and hi < n - 1:
            # Symmetric: at a true edge, reflect padding mirrors the receptive field, so the first
            # frames of a causal stack also depend on `left` blocks to their right.
            r = max(half - lo, hi - half)
            return Reach(in_per_frame, out_per_frame, r, r)
        half *= 2
    raise RuntimeError(f"receptive field of {type(stack).__name__} exceeds {limit} frames")


class StreamingStack:
    """Feed a stack its input piece by piece; get each output frame once, equal to one pass.

    Output is produced in *canonical windows*: output blocks [k*chunk, (k+1)*chunk) (the last one
    shorter), each computed by one call on the input window [k*chunk - ctx, (k+1)*chunk + ctx)
    clipped to the signal. The windows depend only on the signal's length, never on how the input
    arrived, so the floating-point result is bitwise the same for any block size.
    push(x) returns the list of output chunks whose receptive field is complete; push(x, final=True)
    marks the end of the signal and returns the rest. Keeps `ctx` blocks of history plus pending input.
    """

    def __init__(self, stack: nn.Module, reach: Reach, chunk: int):
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1 frame, got {chunk}")
        self.stack, self.reach, self.chunk = stack, reach, int(chunk)
        # A stack with state across windows (the iSTFT head's harmonic source: its running phase)
        # offers new_stream() and forward_window(); every other stack is a plain function of its window.
        new_stream = getattr(stack, "new_stream", None)
        self.stream = new_stream() if callable(new_stream) else None
        self.buf: Optional[torch.Tensor] = None
        self.buf_start = 0          # first input block held in buf
        self.n_in = 0               # input samples received so far
        self.next_out = 0           # next output block to emit

    def push(self, x: Optional[torch.Tensor], final: bool = False) -> list[torch.Tensor]:
        r, ipf, opf = self.reach, self.reach.in_per_frame, self.reach.out_per_frame
        if x is not None and x.shape[-1]:
            self.buf = x if self.buf is None else torch.cat([self.buf, x], dim=-1)
            self.n_in += x.shape[-1]
        outs: list[torch.Tensor] = []
        if self.buf is None:
            return outs
        limit = math.ceil(self.n_in / ipf) if final else self.n_in // ipf - r.right
        off = self.buf_start * ipf
        while self.next_out < limit:
            end = min(limit, self.next_out + self.chunk)
            if end - self.next_out < self.chunk and not final:
                break
            a = max(0, self.next_out - r.left)
            stop = min(self.n_in, (end + r.right) * ipf)
            window = self.buf[..., a * ipf - off:stop - off]
            if self.stream is not None:
                y = self.stack.forward_window(window, self.stream, a, self.next_out, end)
            else:
                y = self.stack(window)
            outs.append(y[..., (self.next_out - a) * opf:(end - a) * opf])
            self.next_out = end
        keep = max(self.buf_start, self.next_out - r.left)
        self.buf = self.buf[..., (keep - self.buf_start) * ipf:]
        self.buf_start = keep
        return outs


# --------------------------------------------------------------------------------- streaming codec
DEFAULT_CHUNK_FRAMES = 750      # canonical window: 10 s at 75 Hz


class _ChunkedStack:
    """pre stack -> LSTM (state carried) -> post stack, each in canonical windows of `chunk` frames:
    the shape of both the encoder and the decoder."""

    def __init__(self, engine, side, name: str, chunk: int):
        self.engine = engine
        self.pre = StreamingStack(side.pre, engine.reach(f"{name}_pre"), chunk)
        self.post = StreamingStack(side.post, engine.reach(f"{name}_post"), chunk)
        self.lstm, self.state = side.lstm, None

    def _windows(self, x: Optional[torch.Tensor], final: bool) -> Iterator[list[torch.Tensor]]:
        """For each window the pre stack completes: what the post stack completes with it."""
        pieces = self.pre.push(x, final)
        if final and not pieces:
            pieces = [None]
        for i, h in enumerate(pieces):
            if h is not None and self.lstm is not None:
                h, self.state = self.lstm(h, self.state, return_state=True)
            yield self.post.push(h, final and i == len(pieces) - 1)


class ChunkedEncoder(_ChunkedStack):
    """Stream scaled audio in ([1, 1, n] blocks of any size, then final=True), codes out.

    Every stage works on canonical windows of `chunk` frames (StreamingStack), the LSTM carries its
    state from window to window and the quantizer runs once per window, so codes are bitwise the
    same whatever the block size; they equal one pass over the whole signal up to float rounding.
    """

    def __init__(self, engine, n_q: int, chunk: int = DEFAULT_CHUNK_FRAMES):
        super().__init__(engine, engine.model.encoder, "enc", chunk)
        self.n_q = n_q

    def push(self, wav: Optional[torch.Tensor], final: bool = False) -> list[torch.Tensor]:
        return [self.engine.quantizer.encode(z, self.n_q) for zs in self._windows(wav, final) for z in zs]


class ChunkedDecoder(_ChunkedStack):
    """Stream codes in, audio (unscaled, [1, 1, frames * hop]) out, in canonical windows."""

    def __init__(self, engine, chunk: int = DEFAULT_CHUNK_FRAMES):
        super().__init__(engine, engine.model.decoder, "dec", chunk)

    def push(self, codes: Optional[torch.Tensor], final: bool = False) -> list[torch.Tensor]:
        z = None if codes is None else self.engine.quantizer.decode(codes)
        return [y for ys in self._windows(z, final) for y in ys]


def encode_stream(engine, blocks: Iterable[torch.Tensor], scale: float, n_q: int,
                  chunk: int = DEFAULT_CHUNK_FRAMES) -> torch.Tensor:
    """Unscaled mono blocks ([n] or [1, 1, n], any sizes) -> codes [1, n_q, T] of their concatenation."""
    enc = ChunkedEncoder(engine, n_q, chunk)
    out: list[torch.Tensor] = []
    s = torch.tensor(scale, dtype=torch.float32)
    with torch.inference_mode():
        for b in blocks:
            b = torch.as_tensor(b, dtype=torch.float32).reshape(1, 1, -1).to(engine.device)
            out += enc.push(b / s)
        out += enc.push(None, final=True)
    if not out:
        raise ValueError("no audio to encode")
    return torch.cat(out, dim=-1)


def decode_stream(engine, codes: torch.Tensor, scale: float, block_frames: int,
                  num_samples: Optional[int] = None, chunk: int = DEFAULT_CHUNK_FRAMES) -> Iterator[np.ndarray]:
    """codes [K, T] or [1, K, T] fed `block_frames` at a time -> float32 numpy blocks (scaled,
    trimmed to num_samples)."""
    if codes.dim() == 2:
        codes = codes[None]
    dec = ChunkedDecoder(engine, chunk)
    T = codes.shape[-1]
    emitted = 0
    limit = num_samples if num_samples is not None else T * engine.hop_length
    s = torch.tensor(scale, dtype=torch.float32)
    with torch.inference_mode():
        for f in range(0, max(T, 1), block_frames):
            for y in dec.push(codes[..., f:f + block_frames].to(engine.device), final=f + block_frames >= T):
                y = (y[0, 0] * s).float().cpu().numpy()[:max(0, limit - emitted)]
                emitted += y.shape[0]
                if y.shape[0]:
                    yield y


# ------------------------------------------------------------------------------------ file streaming
def stream_file(path, sample_rate: int, block_samples: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of an audio file at `sample_rate` (soundfile blocks + soxr stream).

    Never holds more than about one block of the file in memory.
    """
    import soundfile as sf
    import soxr
    info = sf.info(str(path))
    rs = None
    if info.samplerate != sample_rate:
        rs = soxr.ResampleStream(info.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
    in_block = max(1024, int(block_samples * info.samplerate / sample_rate))
    for data in sf.blocks(str(path), blocksize=in_block, dtype="float32", always_2d=True):
        mono = np.ascontiguousarray(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0],
                                    dtype=np.float32)
        if not np.isfinite(mono).all():
            raise ValueError(f"{path}: audio contains NaN or infinite samples")
        if rs is not None:
            mono = rs.resample_chunk(mono, last=False)
        if mono.size:
            yield mono
    if rs is not None:
        tail = rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if tail.size:
            yield tail


def rms_of_blocks(blocks: Iterator[np.ndarray]) -> tuple[float, int]:
    """(sqrt(mean square) + 1e-8 in float64, number of samples) over a stream of blocks."""
    total, n = 0.0, 0
    for b in blocks:
        b64 = b.astype(np.float64)
        total += float(np.dot(b64, b64))
        n += b.shape[0]
    return (math.sqrt(total / max(n, 1)) + 1e-8), n


def encode_file_chunked(engine, path, n_q: int, chunk_seconds: float = 30.0,
                        normalize: bool = True, chunk: int = DEFAULT_CHUNK_FRAMES) -> tuple[torch.Tensor, float, int]:
    """Encode a (long) file in bounded memory: pass 1 the RMS scale, pass 2 the codes.

    Returns (codes [n_q, T] int64, scale, num_samples at the codec rate).
    """
    sr = engine.sample_rate
    block = max(1, int(chunk_seconds * engine.frame_rate)) * engine.hop_length
    if normalize:
        scale, n = rms_of_blocks(stream_file(path, sr, block))
    else:
        scale, n = 1.0, sum(b.shape[0] for b in stream_file(path, sr, block))
    if n == 0:
        raise ValueError(f"{path}: audio is empty (0 samples)")
    scale = float(np.float32(scale))
    from core.progress import progress      # a long file takes a minute: show where the second pass is
    bar = progress(total=round(n / sr), desc=f"encode {Path(path).name}", unit="s")

    def blocks():
        for b in stream_file(path, sr, block):
            yield torch.from_numpy(b)
            bar.update(round(b.shape[0] / sr, 3))
    try:
        codes = encode_stream(engine, blocks(), scale, n_q, chunk)
    finally:
        bar.close()
    return codes[0], scale, n
