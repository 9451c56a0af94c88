"""`python -m codec.code_dump info|finalize|export-hf ...` (codec/code_dump/cli.py)."""
import sys

from .cli import main

sys.exit(main())
