"""Every `python -m` entry point answers --help with its own module name (not
`usage: train.py`), exit 0, without a traceback."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = ["codec", "codec.train", "codec.evaluate", "codec.tokenize", "codec.code_dump", "tts.train",
           "tts.synthesize", "tts.demo", "tts.evaluate", "tts.zeroshot_list", "tts.align.train",
           "tts.align.durations", "tts.align.boundaries", "tts.align.espeak_timing"]


@pytest.mark.parametrize("module", MODULES)
def test_help_names_the_module(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert r.stdout.startswith(f"usage: python -m {module}"), r.stdout[:200]
