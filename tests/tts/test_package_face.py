"""The tts package's face: lazy exports, and `import tts` alone loads no torch."""
from __future__ import annotations

import subprocess
import sys


def test_names_of_the_face():
    import tts
    from tts import SamplingConfig, Synthesizer, SynthesisResult, TTSConfig, load_tts_model  # noqa: F401
    assert set(tts.__all__) == {"Synthesizer", "SynthesisResult", "SamplingConfig", "TTSConfig", "load_tts_model"}
    assert Synthesizer.__module__ == "tts.synthesizer"


def test_import_tts_does_not_import_torch():
    code = "import sys, tts, data_prep; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
