"""Smoke test of egs/libritts/run.sh stages 0-2 on a tiny mini corpus."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from data_prep.fileio import read_jsonl
from data_prep.libritts import read_manifest

REPO = Path(__file__).resolve().parents[2]
RUN_SH = REPO / "egs" / "libritts" / "run.sh"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_run_sh_stages_0_to_2_and_sentinels(tmp_path):
    cmd = ["bash", str(RUN_SH), "--stop-stage", "2", "--mini-size", "tiny", "--nj", "2",
           "--data-dir", str(tmp_path / "data"), "--exp-dir", str(tmp_path / "exp")]
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    data = tmp_path / "data"
    for subset in ("train-clean-100", "dev-clean", "test-clean"):
        manifest = read_manifest(data / "manifests" / f"{subset}.jsonl")
        phonemes = read_jsonl(data / "phonemes" / f"{subset}.jsonl")
        assert manifest and [r["id"] for r in phonemes] == [r["id"] for r in manifest]
        assert all(r["phonemes"] for r in phonemes)
    assert (data / "phonemes" / "tokens.txt").read_text().startswith("<pad> 0\n")
    for n, name in ((0, "corpus"), (1, "manifests"), (2, "phonemes")):
        assert (data / f".done.stage{n}.{name}").is_file()
    assert "stage 2 (phonemes): done" in (tmp_path / "exp" / "run.log").read_text()

    mtime = (data / "manifests" / "dev-clean.jsonl").stat().st_mtime_ns
    second = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    for n, name in ((0, "corpus"), (1, "manifests"), (2, "phonemes")):
        assert f"stage {n} ({name}): already done" in second.stderr
    assert "data_prep." not in second.stderr  # no Python stage ran
    assert (data / "manifests" / "dev-clean.jsonl").stat().st_mtime_ns == mtime

    bad = subprocess.run(["bash", str(RUN_SH), "--bogus"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown option" in bad.stderr
