"""scripts/setup_env.sh: a second run only checks its stamp; a moved checkout installs again (the
editable install would otherwise import the old tree's code)."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _checkout(root: Path) -> Path:
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup_env.sh", root / "scripts" / "setup_env.sh")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    fake = venv_bin / "python"        # records what the set-up asks of it, installs nothing
    fake.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../calls.log"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return root


def _run(root: Path) -> list[str]:
    log = root / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("NDVQ_VENV", "TORCH_SPEC")}
    subprocess.run(["bash", str(root / "scripts" / "setup_env.sh"), "eval"], check=True, env=env,
                   capture_output=True, text=True, timeout=60)
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the set-up would install espeak-ng")
def test_stamp_notices_a_moved_checkout(tmp_path):
    a = _checkout(tmp_path / "a")
    assert any("-e" in c and str(a) in c for c in _run(a))           # first run installs
    assert _run(a) == []                                              # second run: stamp only
    b = tmp_path / "moved"
    shutil.move(str(a), str(b))
    calls = _run(b)
    assert any("-e" in c and str(b) in c for c in calls), calls      # the moved checkout installs again
    assert str(b) in (b / ".venv" / ".ndvq-setup").read_text()
