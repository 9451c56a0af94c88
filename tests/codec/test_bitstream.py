"""Tests for the `.ndvq` compact code file (codec/bitstream.py)."""
from __future__ import annotations

import io
import struct
import wave
import zlib

import numpy as np
import pytest

from codec.bitstream import (CRC_SIZE, HEADER_SIZE, MAGIC, BitstreamError, CodeFile, actual_kbps,
                             bits_per_code, decode_bytes, encode_bytes, nominal_kbps, read_ndvq,
                             write_ndvq)


def _random_codefile(rng, K, T, codebook_size, **kw) -> CodeFile:
    codes = rng.integers(0, codebook_size, size=(K, T), dtype=np.int64)
    defaults = dict(sample_rate=24000, frame_rate=75.0, codebook_size=codebook_size,
                    scale=0.0731, num_samples=T * 320)
    defaults.update(kw)
    return CodeFile(codes=codes, **defaults)


def test_bits_per_code():
    assert [bits_per_code(n) for n in (1, 2, 3, 4, 5, 1023, 1024, 1025, 65536)] == \
        [1, 1, 2, 2, 3, 10, 10, 11, 16]


@pytest.mark.parametrize("bits", list(range(1, 17)))
@pytest.mark.parametrize("K,T", [(1, 0), (1, 1), (3, 7), (8, 75), (32, 13)])
def test_round_trip_all_widths(tmp_path, bits, K, T):
    rng = np.random.default_rng(bits * 1000 + K * 10 + T)
    # the largest and the smallest codebook size that need exactly `bits` bits
    for cb in {2 ** bits, 2 ** (bits - 1) + 1} if bits > 1 else {2}:
        assert bits_per_code(cb) == bits
        cf = _random_codefile(rng, K, T, cb, frame_rate=24000 / 320 + 1 / 3)
        if T:  # make sure extremes are exercised
            cf.codes[0, 0] = cb - 1
            cf.codes[-1, -1] = 0
        path = tmp_path / f"u_{bits}_{cb}.ndvq"
        write_ndvq(path, cf)
        # compact: header + ceil(K*T*bits/8) + crc, nothing else
        assert path.stat().st_size == HEADER_SIZE + (K * T * bits + 7) // 8 + CRC_SIZE
        back = read_ndvq(path)
        assert back.codes.shape == (K, T)
        np.testing.assert_array_equal(back.codes, cf.codes)
        assert back.sample_rate == cf.sample_rate
        assert back.frame_rate == cf.frame_rate  # float64: exact
        assert back.codebook_size == cb
        assert back.num_samples == cf.num_samples
        assert back.scale == pytest.approx(cf.scale, rel=1e-6)  # float32
        assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


def test_packing_layout_is_msb_first_frame_major():
    # K=2, T=2, 3 bits: frame-major order is codes[0,0], codes[1,0], codes[0,1], codes[1,1]
    codes = np.array([[1, 7], [2, 0]])
    data = encode_bytes(CodeFile(codes, 24000, 75.0, 8, 1.0, 640))
    payload = data[HEADER_SIZE:-CRC_SIZE]
    # 001 010 111 000 -> 0010 1011 1000 (pad 0000) -> 0x2b 0x80
    assert payload == bytes([0x2B, 0x80])
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_one_minute_32_codebooks_round_trip():
    rng = np.random.default_rng(0)
    cf = _random_codefile(rng, 32, 75 * 60, 1024)  # one minute at 24 kbps
    back = decode_bytes(encode_bytes(cf))
    np.testing.assert_array_equal(back.codes, cf.codes)


def test_bitrate_1p5_kbps_10s(tmp_path):
    rng = np.random.default_rng(1)
    cf = _random_codefile(rng, 2, 750, 1024, num_samples=240000)
    path = tmp_path / "a.ndvq"
    write_ndvq(path, cf)
    nominal = nominal_kbps(2, 75.0, 10)
    actual = actual_kbps(path, 10.0)
    assert nominal == pytest.approx(1.5)
    assert actual_kbps(encode_bytes(cf), 10.0) == actual
    assert nominal <= actual <= nominal * 1.03, actual  # only the 48-byte header/crc overhead


def _err(fn, *args) -> str:
    with pytest.raises(BitstreamError) as info:
        fn(*args)
    return str(info.value)


def test_corrupt_payload_checksum(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "c.ndvq"
    write_ndvq(path, _random_codefile(rng, 4, 50, 1024))
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + 10] ^= 0x40
    path.write_bytes(bytes(data))
    msg = _err(read_ndvq, path)
    assert "checksum" in msg and str(path) in msg


def test_corrupt_header_field_detected(tmp_path):
    rng = np.random.default_rng(3)
    data = bytearray(encode_bytes(_random_codefile(rng, 4, 50, 1024)))
    data[24] ^= 0x01  # a bit of the scale
    assert "checksum" in _err(decode_bytes, bytes(data))


def test_truncated(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "t.ndvq"
    write_ndvq(path, _random_codefile(rng, 4, 50, 1024))
    full = path.read_bytes()
    path.write_bytes(full[:-7])
    msg = _err(read_ndvq, path)
    assert "truncated" in msg and f"expected {len(full)} bytes, got {len(full) - 7}" in msg
    assert str(path) in msg
    path.write_bytes(full[:20])  # inside the header
    assert "truncated" in _err(read_ndvq, path)
    path.write_bytes(b"")
    assert "truncated" in _err(read_ndvq, path)
    path.write_bytes(full + b"\0")
    assert "trailing data" in _err(read_ndvq, path)


def test_foreign_file_wav(tmp_path):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(np.zeros(2400, dtype=np.int16).tobytes())
    path = tmp_path / "x.wav"
    path.write_bytes(buf.getvalue())
    msg = _err(read_ndvq, path)
    assert "not an .ndvq file" in msg and "RIFF" in msg and str(path) in msg


def test_unsupported_version():
    data = bytearray(encode_bytes(CodeFile(np.zeros((1, 3), int), 24000, 75.0, 1024, 1.0, 960)))
    data[4] = 99
    msg = _err(decode_bytes, bytes(data), "v99.ndvq")
    assert "version 99" in msg and "v99.ndvq" in msg


def test_missing_file(tmp_path):
    assert "no such file" in _err(read_ndvq, tmp_path / "nope.ndvq")


def test_out_of_range_rejected_on_write(tmp_path):
    codes = np.zeros((2, 5), dtype=np.int64)
    codes[1, 3] = 1000
    path = tmp_path / "o.ndvq"
    msg = _err(write_ndvq, path, CodeFile(codes, 24000, 75.0, 1000, 1.0, 1600))
    assert "out of range" in msg and "1000" in msg and "codebook 1, frame 3" in msg
    assert not path.exists() and not list(tmp_path.iterdir())
    codes[1, 3] = -1
    assert "out of range" in _err(encode_bytes, CodeFile(codes, 24000, 75.0, 1000, 1.0, 1600))


def test_out_of_range_rejected_on_read():
    # 1000 codes need 10 bits; a (valid-checksum) stream holding 1023 must be refused on read
    cf = CodeFile(np.full((1, 2), 1023), 24000, 75.0, 1024, 1.0, 640)
    data = bytearray(encode_bytes(cf))
    data[20:24] = struct.pack("<I", 1000)
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    assert "out of range" in _err(decode_bytes, bytes(data))


def test_magic_constant():
    assert encode_bytes(CodeFile(np.zeros((1, 0), int), 24000, 75.0, 1024, 1.0, 0))[:4] == MAGIC
