"""The `.ndvq` file: one utterance's codes, bit-packed, with what is needed to decode them.

Byte layout (version 1, all integers little-endian):

    offset size  type     field
    0      4     bytes    magic b"NDVQ"
    4      1     uint8    format version (1)
    5      4     uint32   sample_rate (Hz)
    9      8     float64  frame_rate (frames/s; may be fractional)
    17     2     uint16   K, number of codebooks (stages) stored
    19     1     uint8    bits per code = ceil(log2(codebook_size)), 1..32
    20     4     uint32   codebook_size
    24     4     float32  scale (the RMS the codec divided the input by; multiply the output by it)
    28     8     uint64   num_samples (original length in samples)
    36     8     uint64   T, number of frames
    44     P     bytes    payload, P = ceil(K * T * bits / 8)
    44+P   4     uint32   CRC32 (zlib.crc32) of bytes [0, 44 + P)

Payload: the codes in *frame-major* order (frame 0's K codes, then frame 1's, ...; i.e. the
`[K, T]` array transposed to `[T, K]` and flattened), each code written as `bits` bits, most
significant bit first, concatenated into one bit stream (MSB-first within each byte) and padded
with zero bits to a whole byte. Frame-major means a prefix of the payload decodes to a prefix of
the utterance (useful for streaming) and that dropping trailing codebooks is a per-frame operation.

Overhead is 48 bytes per file; a 10 s stream at 2 x 10 bits x 75 Hz (1.5 kbps) is
1875 + 48 bytes -> 1.538 kbps on disk.
"""
from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from core.io import atomic_write_bytes

logger = logging.getLogger(__name__)

MAGIC = b"NDVQ"
VERSION = 1
_HEADER = struct.Struct("<4sBIdHBIfQQ")
HEADER_SIZE = _HEADER.size  # 44
CRC_SIZE = 4
MAX_BITS = 32
MAX_CODEBOOKS = 0xFFFF


class BitstreamError(ValueError):
    """A `.ndvq` file or buffer that cannot be written or read; the message names the source."""


@dataclass
class CodeFile:
    """One utterance's codes and what is needed to decode them.

    codes: integer array [K, T], values in [0, codebook_size).
    scale: the RMS the codec divided the input by (multiply the decoded waveform by it).
    num_samples: original waveform length in samples (decoded audio is trimmed to it).
    """
    codes: np.ndarray
    sample_rate: int
    frame_rate: float
    codebook_size: int
    scale: float
    num_samples: int

    @property
    def num_codebooks(self) -> int:
        return int(self.codes.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.codes.shape[1])

    @property
    def bits(self) -> int:
        return bits_per_code(self.codebook_size)

    @property
    def duration(self) -> float:
        """Seconds of audio represented (num_samples / sample_rate)."""
        return self.num_samples / self.sample_rate if self.sample_rate else 0.0


def bits_per_code(codebook_size: int) -> int:
    """ceil(log2(codebook_size)), at least 1 (a codebook of size 1 still takes one bit)."""
    if codebook_size < 1:
        raise BitstreamError(f"codebook_size must be >= 1, got {codebook_size}")
    return max(1, (int(codebook_size) - 1).bit_length())


def nominal_kbps(num_codebooks: int, frame_rate: float, bits: int) -> float:
    """Bitrate of the codes alone: K * frame_rate * bits / 1000."""
    return num_codebooks * frame_rate * bits / 1000.0


def actual_kbps(path_or_bytes: Union[str, os.PathLike, bytes, bytearray], duration_s: float) -> float:
    """Bitrate on disk (header and checksum included) of a `.ndvq` file or its bytes."""
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        size = len(path_or_bytes)
    else:
        size = os.path.getsize(path_or_bytes)
    return size * 8 / duration_s / 1000.0


def payload_size(num_codebooks: int, num_frames: int, bits: int) -> int:
    """Bytes of packed payload: ceil(K * T * bits / 8)."""
    return (num_codebooks * num_frames * bits + 7) // 8


# ----------------------------------------------------------------------------------------- packing
def _pack(values: np.ndarray, bits: int) -> bytes:
    """Pack a flat array of non-negative ints < 2**bits into an MSB-first bit stream.

    Vectorised: each value is expanded into `bits` 0/1 bytes (a [N, bits] uint8 array),
    then np.packbits packs the flattened bit array 8 to a byte (padding with zeros).
    """
    if values.size == 0:
        return b""
    v = values.astype(np.uint64, copy=False)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    bit_array = ((v[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bit_array.reshape(-1)).tobytes()


def _unpack(payload: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of `_pack`: read `count` values of `bits` bits -> int64 [count]."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    bit_array = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=count * bits)
    bit_array = bit_array.reshape(count, bits).astype(np.uint64)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    return (bit_array << shifts[None, :]).sum(axis=1, dtype=np.uint64).astype(np.int64)


# ------------------------------------------------------------------------------------ encode/decode
def encode_bytes(codefile: CodeFile, source: str = "<bytes>") -> bytes:
    """Serialise a CodeFile to the `.ndvq` byte layout (see module docstring)."""
    codes = np.asarray(codefile.codes)
    if codes.ndim != 2:
        raise BitstreamError(f"{source}: codes must be [K, T], got shape {codes.shape}")
    if codes.size and not np.issubdtype(codes.dtype, np.integer):
        raise BitstreamError(f"{source}: codes must be integers, got dtype {codes.dtype}")
    K, T = codes.shape
    if not 1 <= K <= MAX_CODEBOOKS:
        raise BitstreamError(f"{source}: number of codebooks must be in 1..{MAX_CODEBOOKS}, got {K}")
    cb = int(codefile.codebook_size)
    if not 1 <= cb <= 0xFFFFFFFF:
        raise BitstreamError(f"{source}: codebook_size must be in 1..2**32-1, got {cb}")
    bits = bits_per_code(cb)
    if codes.size:
        lo, hi = int(codes.min()), int(codes.max())
        if lo < 0 or hi >= cb:
            bad = lo if lo < 0 else hi
            k, t = np.argwhere(codes == bad)[0]
            raise BitstreamError(
                f"{source}: code out of range: {bad} at codebook {k}, frame {t} "
                f"(codebook_size {cb}, valid 0..{cb - 1})")
    if not 0 <= int(codefile.sample_rate) <= 0xFFFFFFFF:
        raise BitstreamError(f"{source}: sample_rate out of range: {codefile.sample_rate}")
    if int(codefile.num_samples) < 0:
        raise BitstreamError(f"{source}: num_samples must be >= 0, got {codefile.num_samples}")
    header = _HEADER.pack(MAGIC, VERSION, int(codefile.sample_rate), float(codefile.frame_rate),
                          K, bits, cb, float(codefile.scale), int(codefile.num_samples), T)
    payload = _pack(np.ascontiguousarray(codes.T).reshape(-1), bits)  # frame-major
    assert len(payload) == payload_size(K, T, bits)
    body = header + payload
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def decode_bytes(data: bytes, source: str = "<bytes>") -> CodeFile:
    """Parse `.ndvq` bytes; raises BitstreamError naming `source` on any inconsistency."""
    data = bytes(data)
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        if MAGIC.startswith(data[:len(MAGIC)]):
            raise BitstreamError(
                f"{source}: truncated: expected at least {HEADER_SIZE + CRC_SIZE} bytes, got {len(data)}")
        raise BitstreamError(
            f"{source}: not an .ndvq file (bad magic {data[:4]!r}, expected {MAGIC!r})")
    version = data[4] if len(data) > 4 else None
    if version is not None and version != VERSION:
        raise BitstreamError(
            f"{source}: unsupported .ndvq format version {version} (this reader supports {VERSION})")
    if len(data) < HEADER_SIZE + CRC_SIZE:
        raise BitstreamError(
            f"{source}: truncated: expected at least {HEADER_SIZE + CRC_SIZE} bytes, got {len(data)}")
    (_, _, sample_rate, frame_rate, K, bits, cb, scale, num_samples, T) = _HEADER.unpack_from(data)
    if cb < 1 or bits != bits_per_code(cb):
        raise BitstreamError(
            f"{source}: corrupt header: {bits} bits per code does not match codebook_size {cb}")
    if K < 1:
        raise BitstreamError(f"{source}: corrupt header: {K} codebooks")
    if T > len(data) * 8:  # guard against absurd sizes before multiplying
        raise BitstreamError(
            f"{source}: truncated or corrupt: header claims {T} frames but the file has {len(data)} bytes")
    expected = HEADER_SIZE + payload_size(K, T, bits) + CRC_SIZE
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing data"
        raise BitstreamError(f"{source}: {what}: expected {expected} bytes, got {len(data)}")
    stored_crc = struct.unpack_from("<I", data, expected - CRC_SIZE)[0]
    crc = zlib.crc32(data[:expected - CRC_SIZE]) & 0xFFFFFFFF
    if crc != stored_crc:
        raise BitstreamError(
            f"{source}: checksum mismatch (stored {stored_crc:08x}, computed {crc:08x}): file is corrupt")
    flat = _unpack(data[HEADER_SIZE:expected - CRC_SIZE], K * T, bits)
    codes = flat.reshape(T, K).T.copy()
    if codes.size and int(codes.max()) >= cb:
        raise BitstreamError(
            f"{source}: code out of range: {int(codes.max())} >= codebook_size {cb}")
    return CodeFile(codes=codes, sample_rate=int(sample_rate), frame_rate=float(frame_rate),
                    codebook_size=int(cb), scale=float(scale), num_samples=int(num_samples))


# ------------------------------------------------------------------------------------------- files
def write_ndvq(path: Union[str, os.PathLike], codefile: CodeFile) -> None:
    """Write atomically (core.io: a temporary file in the same folder, fsync, os.replace)."""
    data = encode_bytes(codefile, source=str(path))
    atomic_write_bytes(path, data)
    logger.debug("wrote %s: %d bytes, K=%d T=%d", path, len(data), *codefile.codes.shape)


def read_ndvq(path: Union[str, os.PathLike]) -> CodeFile:
    """Read and verify a `.ndvq` file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BitstreamError(f"{path}: no such file") from None
    return decode_bytes(data, source=str(path))


__all__ = ["BitstreamError", "CodeFile", "MAGIC", "VERSION", "HEADER_SIZE", "CRC_SIZE",
           "bits_per_code", "nominal_kbps", "actual_kbps", "payload_size",
           "encode_bytes", "decode_bytes", "write_ndvq", "read_ndvq"]
