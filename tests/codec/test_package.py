"""The codec package's face: lazy exports (importing codec loads no torch) and every exported name resolves."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_face_exports_resolve():
    import codec
    from codec import Codec, CodecConfig, load_codec
    from codec.api import Codec as ApiCodec
    from codec.checkpoint import load_codec as ckpt_load_codec
    from codec.config import CodecConfig as ConfigCodecConfig
    assert Codec is ApiCodec and load_codec is ckpt_load_codec and CodecConfig is ConfigCodecConfig
    for name in codec.__all__:
        assert getattr(codec, name) is not None, name
    with pytest.raises(AttributeError):
        codec.no_such_name


@pytest.mark.parametrize("module", ["codec", "codec.models", "codec.code_dump"])
def test_import_loads_no_torch(module):
    r = subprocess.run([sys.executable, "-c", f"import {module}, sys; assert 'torch' not in sys.modules"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
