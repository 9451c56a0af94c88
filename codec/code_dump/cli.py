"""The command line of `python -m codec.code_dump`: info, finalize, export-hf."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from core.logs import setup_logging

from .format import HEADER_FILE, DumpError, _check_header, _read_json
from .hf import export_hf
from .reader import CodeDump
from .writer import DumpWriter


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codec.code_dump",
                                     description="Inspect, finalize and export NDVQ code dumps.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info", help="print the header and corpus statistics")
    p.add_argument("dir")
    p = sub.add_parser("finalize", help="merge complete per-shard indexes into index.jsonl")
    p.add_argument("dir")
    p.add_argument("--num-shards", type=int, default=None,
                   help="require shards 0..N-1 to be complete")
    p = sub.add_parser("export-hf", help="export as a Hugging Face dataset (save_to_disk)")
    p.add_argument("dir")
    p.add_argument("out")
    p.add_argument("--n-q", type=int, default=None, help="keep only the first N codebooks")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        if args.cmd == "info":
            sys.stdout.write(json.dumps(CodeDump(args.dir).summary(), indent=2) + "\n")
        elif args.cmd == "finalize":
            header = _check_header(_read_json(Path(args.dir) / HEADER_FILE), args.dir)
            n = DumpWriter(args.dir, header).finalize(args.num_shards)
            sys.stdout.write(f"{n} utterances\n")
        elif args.cmd == "export-hf":
            export_hf(args.dir, args.out, n_q=args.n_q)
    except (DumpError, ImportError, FileNotFoundError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    return 0
