"""The user-facing codec handle: load, encode, decode, save. Also the seam the TTS consumes.

    from codec.api import Codec
    codec = Codec.from_pretrained("exp/codec/model")           # or a Hugging Face Hub id
    res = codec.encode(wav, sample_rate=16000, bandwidth=6.0)   # numpy/torch, [T], [C, T], [B, C, T] or a list
    res.codes        # [B, K, T] int64, res.lengths [B] frames, res.scales [B, 1], res.num_samples [B]
    audio = codec.decode(res.codes, res.scales, res.lengths)    # [B, 1, T'] at codec.sample_rate

Inference runs on a copy of the model with weight norm folded, in eval mode under
torch.inference_mode, with a fused quantizer (codec.inference.optimize.FusedQuantizer). Codes are deterministic:
the same waveform gets bitwise the same codes alone, inside a batch of any composition, or streamed
in blocks of any size. How: every item is processed on its own samples only (a batch is returned
padded with lengths, but padding never enters a convolution), in *canonical windows* of
`chunk_seconds` (codec.inference.streaming.StreamingStack: window k covers frames [k*C, (k+1)*C) plus measured
receptive-field context, the LSTM state carried over), so every floating-point operation an item
sees depends on that item alone. (A padded conv batch cannot give this: PyTorch's CPU convolutions
round differently for batch 1 and batch > 1, and a 2e-7 difference flips near-tied codes.) The
windows equal one pass over the whole signal up to float rounding (tests/codec/test_chunked.py).

The pretrained format is a directory with `config.json` (core.config.to_dict(CodecConfig))
and `model.safetensors` (the NDVQCodec state_dict), written and read by codec/checkpoint.py. Loading
reads JSON and tensors only; no code is executed.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np
import torch

from core.checkpoint import WEIGHTS_FILE
from core.hub import resolve_model_dir
from core.io import sha256_file

from .bitstream import BitstreamError, CodeFile, read_ndvq
from .checkpoint import export_codec, load_codec
from .config import CodecConfig
from .inference.engine import InferenceEngine
from .inference.optimize import Precision
from .models.ndvq_codec import NDVQCodec
from .inference.streaming import decode_stream, encode_file_chunked

logger = logging.getLogger(__name__)

LONG_FILE_SECONDS = 300.0       # files longer than this are encoded/decoded chunked (bounded memory)


# ------------------------------------------------------------------------------------------ results
@dataclass
class EncodeResult:
    codes: torch.Tensor          # [B, K, T] int64; frames >= lengths[b] are 0
    lengths: torch.Tensor        # [B] int64 valid frames per item
    scales: torch.Tensor         # [B, 1] float32 RMS the input was divided by
    num_samples: torch.Tensor    # [B] int64 input length at the codec's sample rate

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def item_codes(self, i: int) -> torch.Tensor:
        """[K, lengths[i]] codes of item i."""
        return self.codes[i, :, : int(self.lengths[i])]


# ------------------------------------------------------------------------------------------- Codec
def _resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    try:
        from data_prep.audio import resample
    except ImportError:  # data_prep is optional for the codec
        import soxr

        def resample(w, a, b):
            return soxr.resample(w, a, b, quality="HQ").astype(np.float32, copy=False)
    return np.asarray(resample(wav, sr_in, sr_out), dtype=np.float32)




def check_device(device: Union[str, torch.device, None]) -> torch.device:
    """`device` as a torch.device, or ValueError in one line if it is not a device name or this
    machine does not have it (checked before any model is loaded)."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"--device {device}: not a device name (cpu, cuda, cuda:N, mps)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__}, "
                             f"CUDA build: {torch.version.cuda or 'no'}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"--device {device}: MPS is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        raise ValueError(f"--device {device}: unsupported device type {dev.type!r} (cpu, cuda, mps)")
    return dev


class Codec:
    """User-facing NDVQ codec (see module docstring).

    precision: "fp32" (default; the reference numbers) or "bf16" (convolutions and LSTMs in
    bfloat16, about 2x faster on CPUs with AVX512-BF16/AMX; codes and audio close to fp32's, see
    benchmarks/results/codec_inference.md for the measured agreement). Like `chunk_seconds`, it is
    part of what defines the codes bitwise, so it is fixed per handle.
    """

    def __init__(self, model: NDVQCodec, device: Union[str, torch.device, None] = None,
                 checkpoint_sha256: Optional[str] = None, chunk_seconds: float = 10.0,
                 precision: Precision = "fp32"):
        # The trainable form, kept for save_pretrained. Its mode is the caller's business: inference runs
        # on the engine's folded eval-mode copy, so a model still being trained stays in train mode.
        self.model = model
        self.config: CodecConfig = model.config
        self.engine = InferenceEngine(model, device, precision)
        self.precision: Precision = precision
        # canonical window (frames): part of what defines the codes bitwise, so it is fixed per handle
        self.chunk_frames = max(1, int(round(chunk_seconds * self.config.frame_rate)))
        self.device = self.engine.device
        self.checkpoint_sha256 = checkpoint_sha256

    # -- loading and saving ----------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, dir_or_hub_id: Union[str, os.PathLike], device=None,
                        revision: Optional[str] = None, cache_dir: Optional[str] = None,
                        precision: Precision = "fp32") -> "Codec":
        """A local directory with config.json + model.safetensors, or a Hugging Face Hub repo id."""
        path = resolve_model_dir(dir_or_hub_id, "codec", revision=revision, cache_dir=cache_dir)
        model = load_codec(path, device="cpu")
        return cls(model, device=device, checkpoint_sha256=sha256_file(path / WEIGHTS_FILE),
                   precision=precision)

    def save_pretrained(self, out_dir: Union[str, os.PathLike]) -> Path:
        out = export_codec(self.model, out_dir)
        self.checkpoint_sha256 = sha256_file(out / WEIGHTS_FILE)
        return out

    def push_to_hub(self, repo_id: str, private: bool = True, token: Optional[str] = None,
                    commit_message: str = "Upload NDVQ codec") -> str:
        """Save to a temporary directory and upload it with huggingface_hub (ordinary login flow)."""
        import tempfile
        from huggingface_hub import HfApi
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
        return str(info)

    # -- properties ------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def frame_rate(self) -> float:
        return float(self.config.frame_rate)

    @property
    def hop_length(self) -> int:
        return int(self.config.seanet.hop_length)

    @property
    def n_q(self) -> int:
        return int(self.model.n_q)

    @property
    def codebook_size(self) -> int:
        return int(self.model.codebook_size)

    @property
    def bandwidths(self) -> tuple[float, ...]:
        return tuple(self.config.bandwidths)

    def resolve_n_q(self, bandwidth: Optional[float] = None, n_q: Optional[int] = None) -> int:
        if bandwidth is not None and n_q is not None:
            raise ValueError("give bandwidth or n_q, not both")
        if bandwidth is not None:           # refused, not clamped (as the CLI): 0, -1, 100, NaN
            lo, hi = self.kbps(1), self.kbps(self.n_q)
            try:
                bw = float(bandwidth)
            except (TypeError, ValueError):
                bw = math.nan
            offered = any(abs(bw - b) < 1e-9 for b in self.bandwidths)   # config.bandwidths: capped at n_q
            if not (lo - 1e-9 <= bw <= hi + 1e-9 or offered):           # False for NaN
                raise ValueError(f"bandwidth {bandwidth!r} is outside {lo:g}..{hi:g} kbps of this codec "
                                 f"(1..{self.n_q} codebooks of {lo:g} kbps)")
        if n_q is None:
            n_q = self.n_q if bandwidth is None else self.config.n_q_for_bandwidth(float(bandwidth))
        if not 1 <= int(n_q) <= self.n_q:
            raise ValueError(f"n_q={n_q} is outside 1..{self.n_q}")
        return int(n_q)

    def kbps(self, n_q: int) -> float:
        return n_q * self.frame_rate * self.config.bits_per_code / 1000.0

    # -- input handling --------------------------------------------------------------------------
    def prepare(self, wav, sample_rate: int) -> list[np.ndarray]:
        """Any accepted input -> list of mono float32 numpy arrays at the codec's rate."""
        if isinstance(wav, (list, tuple)):
            items = [self._as_numpy(w) for w in wav]
            items = [w if w.ndim == 1 else self._downmix(w) for w in items]
        else:
            arr = self._as_numpy(wav)
            if arr.ndim == 1:
                items = [arr]
            elif arr.ndim == 2:
                items = [self._downmix(arr)]
            elif arr.ndim == 3:
                items = [self._downmix(a) for a in arr]
            else:
                raise ValueError(f"wav must be [T], [C, T] or [B, C, T]; got shape {tuple(arr.shape)}")
        out = []
        for i, w in enumerate(items):
            if w.ndim != 1:
                raise ValueError(f"item {i}: expected [T] or [C, T], got shape {w.shape}")
            if w.shape[0] == 0:
                raise ValueError(f"item {i}: empty waveform")
            if not np.isfinite(w).all():
                raise ValueError(f"item {i}: waveform contains NaN or infinite samples")
            if int(sample_rate) != self.sample_rate:
                w = _resample(w, int(sample_rate), self.sample_rate)
            out.append(np.ascontiguousarray(w, dtype=np.float32))
        return out

    @staticmethod
    def _as_numpy(w) -> np.ndarray:
        if isinstance(w, torch.Tensor):
            return w.detach().cpu().float().numpy()
        return np.asarray(w, dtype=np.float32)

    @staticmethod
    def _downmix(w: np.ndarray) -> np.ndarray:
        if w.ndim != 2:
            raise ValueError(f"expected [C, T], got shape {w.shape}")
        return w[0] if w.shape[0] == 1 else w.mean(axis=0, dtype=np.float64).astype(np.float32)

    def rms_scale(self, wav: np.ndarray) -> float:
        """RMS + 1e-8 (float64 accumulation, rounded to float32); 1.0 without normalisation."""
        if not self.config.normalize:
            return 1.0
        w = wav.astype(np.float64)
        return float(np.float32(np.sqrt(np.dot(w, w) / max(1, w.shape[0])) + 1e-8))

    # -- encode / decode -------------------------------------------------------------------------
    def encode(self, wav, sample_rate: Optional[int] = None, bandwidth: Optional[float] = None,
               n_q: Optional[int] = None) -> EncodeResult:
        """Encode one waveform or a batch (see module docstring). sample_rate defaults to the codec's."""
        n_q = self.resolve_n_q(bandwidth, n_q)
        items = self.prepare(wav, self.sample_rate if sample_rate is None else sample_rate)
        scales = [self.rms_scale(w) for w in items]
        lengths = [w.shape[0] for w in items]
        hop = self.hop_length
        frames = [-(-n // hop) for n in lengths]
        B, T = len(items), max(frames)
        codes = torch.zeros(B, n_q, T, dtype=torch.long)
        with torch.inference_mode():
            for i, w in enumerate(items):
                codes[i, :, :frames[i]] = self.engine.encode_item(torch.from_numpy(w), scales[i], n_q,
                                                                  self.chunk_frames).cpu()
        return EncodeResult(codes, torch.tensor(frames, dtype=torch.long),
                            torch.tensor(scales, dtype=torch.float32)[:, None],
                            torch.tensor(lengths, dtype=torch.long))

    def decode(self, codes, scales=None, lengths=None, num_samples=None) -> torch.Tensor:
        """codes [B, K, T] (or [K, T], or an EncodeResult) -> audio [B, 1, T'] float32 at sample_rate.

        scales [B, 1] or [B] (default 1); lengths [B] valid frames (default all); num_samples [B]
        trims each item to its original length. T' = max trimmed length; the rest is zeros.
        """
        if isinstance(codes, EncodeResult):
            res = codes
            codes, scales = res.codes, res.scales if scales is None else scales
            lengths = res.lengths if lengths is None else lengths
            num_samples = res.num_samples if num_samples is None else num_samples
        codes = torch.as_tensor(codes)
        if codes.dim() == 2:
            codes = codes[None]
        if codes.dim() != 3:
            raise ValueError(f"codes must be [B, K, T] or [K, T], got shape {tuple(codes.shape)}")
        B, K, T = codes.shape
        if K < 1 or K > self.n_q:
            raise ValueError(f"codes have {K} codebooks; this codec has 1..{self.n_q}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"codes out of range [0, {self.codebook_size})")
        frames = [T] * B if lengths is None else [int(v) for v in torch.as_tensor(lengths).flatten()]
        hop = self.hop_length
        out_len = [f * hop for f in frames]
        if num_samples is not None:
            out_len = [min(o, int(n)) for o, n in zip(out_len, torch.as_tensor(num_samples).flatten())]
        sc = torch.ones(B) if scales is None else torch.as_tensor(scales, dtype=torch.float32).reshape(B)
        wav = torch.zeros(B, 1, max(out_len) if out_len else 0)
        with torch.inference_mode():
            for b in range(B):
                if frames[b] > 0 and out_len[b] > 0:
                    y = self.engine.decode_item(codes[b, :, :frames[b]].long(), self.chunk_frames).cpu()
                    wav[b, 0, :out_len[b]] = y[:out_len[b]] * sc[b]
        return wav

    # -- files -----------------------------------------------------------------------------------
    def encode_file(self, path: Union[str, os.PathLike], bandwidth: Optional[float] = None,
                    n_q: Optional[int] = None, chunk_seconds: float = 30.0,
                    long_seconds: float = LONG_FILE_SECONDS) -> CodeFile:
        """Audio file -> CodeFile (write it with codec.bitstream.write_ndvq). Long files are chunked."""
        import soundfile as sf
        from data_prep.audio import AudioError, audio_info, load_audio
        n_q = self.resolve_n_q(bandwidth, n_q)
        frames, sr, _ = audio_info(path)
        if frames == 0:
            raise AudioError(path, "audio is empty (0 samples)")
        if frames / sr > long_seconds:
            try:
                codes, scale, n = encode_file_chunked(self.engine, path, n_q, chunk_seconds,
                                                      normalize=self.config.normalize,
                                                      chunk=self.chunk_frames)
            except (ValueError, RuntimeError, sf.LibsndfileError) as e:
                raise AudioError(path, str(e)) from e
            codes = codes.cpu().numpy()
        else:
            wav, _ = load_audio(path, sample_rate=self.sample_rate)
            res = self.encode(wav, self.sample_rate, n_q=n_q)
            codes, scale, n = res.item_codes(0).numpy(), float(res.scales[0, 0]), int(res.num_samples[0])
        return CodeFile(codes=codes, sample_rate=self.sample_rate, frame_rate=self.frame_rate,
                        codebook_size=self.codebook_size, scale=scale, num_samples=n)

    def check_codefile(self, cf: CodeFile, source: str = "<codes>") -> None:
        """BitstreamError if a CodeFile was not made by a codec like this one."""
        problems = []
        if cf.sample_rate != self.sample_rate:
            problems.append(f"sample rate {cf.sample_rate} != codec's {self.sample_rate}")
        if abs(cf.frame_rate - self.frame_rate) > 1e-6:
            problems.append(f"frame rate {cf.frame_rate} != codec's {self.frame_rate}")
        if cf.codebook_size != self.codebook_size:
            problems.append(f"codebook size {cf.codebook_size} != codec's {self.codebook_size}")
        if cf.num_codebooks > self.n_q:
            problems.append(f"{cf.num_codebooks} codebooks > codec's {self.n_q}")
        if cf.num_samples > cf.num_frames * self.hop_length or cf.num_samples <= (cf.num_frames - 1) * self.hop_length:
            problems.append(f"{cf.num_samples} samples do not match {cf.num_frames} frames")
        if not np.isfinite(cf.scale) or cf.scale <= 0:
            problems.append(f"invalid scale {cf.scale}")
        if problems:
            raise BitstreamError(f"{source}: not decodable by this codec: " + "; ".join(problems))

    def decode_codefile(self, cf: CodeFile, chunk_seconds: float = 30.0,
                        long_seconds: float = LONG_FILE_SECONDS, source: str = "<codes>") -> Iterable[np.ndarray]:
        """Decoded float32 blocks of a CodeFile (one block for short files)."""
        self.check_codefile(cf, source)
        codes = torch.from_numpy(np.ascontiguousarray(cf.codes)).long()
        if cf.duration > long_seconds:
            block = max(1, int(chunk_seconds * self.frame_rate))
            return decode_stream(self.engine, codes, cf.scale, block, cf.num_samples, self.chunk_frames)
        wav = self.decode(codes[None], torch.tensor([[cf.scale]]), num_samples=[cf.num_samples])
        return [wav[0, 0].numpy()]

    def decode_file(self, path: Union[str, os.PathLike], out_path: Optional[Union[str, os.PathLike]] = None,
                    **kw) -> tuple[Optional[np.ndarray], int]:
        """.ndvq -> (wav [T] float32, sample_rate); with out_path, write a WAV (streamed, atomic)
        and return (None, sample_rate). Raises BitstreamError for corrupt or foreign files."""
        cf = read_ndvq(path)
        blocks = self.decode_codefile(cf, source=str(path), **kw)
        if out_path is None:
            return np.concatenate(list(blocks)), self.sample_rate
        write_wav_blocks(out_path, blocks, self.sample_rate)
        return None, self.sample_rate


def write_wav_blocks(path: Union[str, os.PathLike], blocks: Iterable[np.ndarray], sample_rate: int,
                     subtype: str = "PCM_16") -> None:
    """Write float blocks to an audio file atomically (nothing at `path` unless all succeeded)."""
    import soundfile as sf
    from core.io import atomic_path
    path = Path(path)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    with atomic_path(path) as tmp:
        with sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=1, subtype=subtype, format=fmt) as fh:
            for b in blocks:
                fh.write(np.clip(np.nan_to_num(b), -1.0, 1.0))


__all__ = ["Codec", "EncodeResult", "check_device", "write_wav_blocks"]
