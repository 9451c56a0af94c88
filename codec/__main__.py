"""Command line: encode / decode / roundtrip audio with an NDVQ codec, and tokenize corpora.

    python -m codec encode IN.wav OUT.ndvq --model DIR --bandwidth 1.5
    python -m codec decode OUT.ndvq OUT.wav --model DIR
    python -m codec roundtrip IN.wav OUT.wav --model DIR --bandwidth 6 [--precision bf16]
    python -m codec tokenize --manifest M.jsonl --model DIR --out data/codes --bandwidth 6   (codec.tokenize)

IN may be a folder: it is searched recursively and OUT mirrors its tree. A summary line reports the
nominal bitrate (codes alone) and the actual one (file size on disk incl. header and checksum).
Exit codes: 0 success, 1 bad usage / unreadable audio, 2 corrupt or foreign .ndvq files. No output
file is written for an input that fails.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from core.logs import setup_logging

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
EXIT_OK, EXIT_USAGE, EXIT_BITSTREAM = 0, 1, 2


def _pairs(src: Path, dst: Path, exts: tuple[str, ...], out_ext: str) -> list[tuple[Path, Path]]:
    """(input, output) per file; ValueError before any work when two inputs would write one output
    (p.mp3 and p.ogg -> p.wav) or an output would overwrite its input."""
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in exts)
        pairs = [(p, (dst / p.relative_to(src)).with_suffix(out_ext)) for p in files]
    elif not src.exists():
        raise FileNotFoundError(f"{src}: no such file or directory")
    else:
        if dst.is_dir():
            raise ValueError(f"{dst} is a folder; give an output file name (or a folder as input)")
        pairs = [(src, dst)]
    by_out: dict[Path, list[Path]] = {}
    for inp, out in pairs:
        by_out.setdefault(out.resolve(), []).append(inp)
        if out.resolve() == inp.resolve():
            raise ValueError(f"{inp}: the output would overwrite the input; choose another output")
    clash = {o: ins for o, ins in by_out.items() if len(ins) > 1}
    if clash:
        o, ins = next(iter(clash.items()))
        raise ValueError(f"{len(clash)} output file(s) would be written by more than one input, e.g. "
                         f"{' and '.join(str(i) for i in ins)} -> {o}; rename them or convert them separately")
    return pairs


def _check_bandwidth(codec, bandwidth: Optional[float]) -> None:
    """A bandwidth below one codebook's rate or above all of them is refused, not clamped."""
    if bandwidth is None:
        return
    lo, hi = codec.kbps(1), codec.kbps(codec.n_q)
    if not (lo - 1e-9 <= bandwidth <= hi + 1e-9):
        raise ValueError(f"--bandwidth {bandwidth:g} is outside {lo:g}..{hi:g} kbps of this codec "
                         f"(1..{codec.n_q} codebooks of {lo:g} kbps)")


def _add_common(p: argparse.ArgumentParser, bandwidth: bool = True) -> None:
    p.add_argument("input", help="file or folder")
    p.add_argument("output", help="file or folder (mirrors the input folder's tree)")
    p.add_argument("--model", required=True, help="codec directory (config.json + model.safetensors) or Hub id")
    p.add_argument("--device", default=None)
    if bandwidth:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--bandwidth", type=float, default=None, help="kbps (default: all codebooks)")
        g.add_argument("--n-q", type=int, default=None, help="number of codebooks")
    p.add_argument("--chunk-seconds", type=float, default=30.0, help="chunk size for long files")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="arithmetic of the convolutions and LSTMs: fp32 (reference) or bf16 (about 2x "
                        "faster on CPUs with AVX512-BF16/AMX; codes and audio close to, not equal to, "
                        "fp32's; decode with the precision you encoded with for identical results)")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per file")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m codec", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_common(sub.add_parser("encode", help="audio -> .ndvq"))
    _add_common(sub.add_parser("decode", help=".ndvq -> audio"), bandwidth=False)
    _add_common(sub.add_parser("roundtrip", help="audio -> codes -> audio (through the .ndvq bytes)"))
    sub.add_parser("tokenize", help="manifest(s) -> code dump (see python -m codec.tokenize --help)")
    return parser


def _error(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _plan(args) -> list[tuple[Path, Path]]:
    """The (input, output) pairs of the command, checked before the codec loads (ValueError,
    FileNotFoundError: bad usage)."""
    from .api import check_device
    src, dst = Path(args.input), Path(args.output)
    check_device(args.device)
    if args.cmd == "decode":
        pairs = _pairs(src, dst, (".ndvq",), ".wav")
    else:
        pairs = _pairs(src, dst, AUDIO_EXTS, ".ndvq" if args.cmd == "encode" else ".wav")
    if not pairs:
        raise ValueError(f"no input files found in {src}")
    return pairs


def _load(args):
    """(codec, n_q of the encoding; None to decode), or (None, None) after printing the error."""
    from .api import Codec
    try:
        codec = Codec.from_pretrained(args.model, device=args.device, precision=args.precision)
    except FileNotFoundError as e:           # names the model argument already
        _error(e)
        return None, None
    except (ValueError, OSError) as e:
        _error(f"cannot load codec {args.model}: {e}")
        return None, None
    if args.cmd == "decode":
        return codec, None
    try:
        _check_bandwidth(codec, args.bandwidth)
        return codec, codec.resolve_n_q(args.bandwidth, args.n_q)
    except ValueError as e:
        _error(e)
        return None, None


def _convert(cmd: str, codec, inp: Path, out: Path, n_q: Optional[int], chunk_seconds: float):
    """Run one file through `cmd`; (its CodeFile, the .ndvq bytes or None when decoding)."""
    from .api import write_wav_blocks
    from .bitstream import decode_bytes, encode_bytes, read_ndvq, write_ndvq
    kw = dict(chunk_seconds=chunk_seconds)
    if cmd == "encode":
        cf = codec.encode_file(inp, n_q=n_q, **kw)
        data = encode_bytes(cf, source=str(out))
        write_ndvq(out, cf)
        return cf, data
    if cmd == "decode":
        cf = read_ndvq(inp)
        write_wav_blocks(out, codec.decode_codefile(cf, source=str(inp), **kw), codec.sample_rate)
        return cf, None
    data = encode_bytes(codec.encode_file(inp, n_q=n_q, **kw), source=str(inp))
    cf = decode_bytes(data, source=str(inp))
    write_wav_blocks(out, codec.decode_codefile(cf, source=str(inp), **kw), codec.sample_rate)
    return cf, data


def _run(args, codec, pairs: list[tuple[Path, Path]], n_q: Optional[int]) -> int:
    """Convert every pair (a failing file is reported and skipped) and print the summary line."""
    from .bitstream import BitstreamError, actual_kbps, nominal_kbps
    from data_prep.audio import AudioError

    status, seconds, total_bytes, total_bits, done = EXIT_OK, 0.0, 0, 0.0, 0
    t0 = time.perf_counter()
    for inp, out in pairs:
        try:
            cf, data = _convert(args.cmd, codec, inp, out, n_q, args.chunk_seconds)
        except BitstreamError as e:
            _error(e)
            status = EXIT_BITSTREAM
            continue
        except (AudioError, ValueError, RuntimeError, OSError) as e:
            _error(f"{inp}: {e}")
            status = max(status, EXIT_USAGE)
            continue
        size = len(data) if data is not None else inp.stat().st_size
        nominal = nominal_kbps(cf.num_codebooks, cf.frame_rate, cf.bits)
        actual = actual_kbps(data if data is not None else inp, cf.duration) if cf.duration > 0 else 0.0
        seconds += cf.duration
        total_bytes += size
        total_bits += nominal * cf.duration
        done += 1
        if args.verbose:
            print(f"{inp} -> {out}: {cf.duration:.2f} s, {cf.num_codebooks} codebooks, "
                  f"nominal {nominal:.3f} kbps, actual {actual:.3f} kbps")
    wall = time.perf_counter() - t0
    if done:
        print(f"{args.cmd}: {done}/{len(pairs)} file(s), {seconds:.1f} s of audio in {wall:.1f} s "
              f"({seconds / max(wall, 1e-9):.1f}x real time); nominal {total_bits / max(seconds, 1e-9):.3f} kbps, "
              f"actual {total_bytes * 8 / 1000 / max(seconds, 1e-9):.3f} kbps")
    if done < len(pairs):
        print(f"{args.cmd}: {len(pairs) - done} file(s) failed", file=sys.stderr)
    return status


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "tokenize":
        from .tokenize import main as tokenize_main
        return tokenize_main(argv[1:])
    args = _parser().parse_args(argv)
    setup_logging(args.verbose, quiet=True)
    try:
        pairs = _plan(args)
    except (FileNotFoundError, ValueError) as e:
        _error(e)
        return EXIT_USAGE
    codec, n_q = _load(args)
    if codec is None:
        return EXIT_USAGE
    return _run(args, codec, pairs, n_q)

if __name__ == "__main__":
    sys.exit(main())
