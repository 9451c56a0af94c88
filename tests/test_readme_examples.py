"""Every command of README.md's code blocks runs as written, on tiny models and files made
here, so that the examples cannot drift from the code again.

Each README command is matched by exactly one rule of RULES (a new command without a rule fails the test):
  run   -- run as written in a workspace holding the files it names (tiny random codec, AR, NAR, dumps);
           training commands get a step cap appended (the README shows no budget);
  help  -- run `python -m MODULE --help` only, for the reason given (the recipe's 20-30 minutes, the test
           suite itself, GPUs, a server, heavyweight scorers, or an ellipsis that stands for arguments);
Python blocks run as written (with `wav` defined), but for the Hub upload line (network).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")]

TRAIN_CAP = "train.max_steps=1 train.valid_every=0 train.exp_dir=tts_exp model.d_model=32 model.n_layers=1 " \
            "model.n_heads=2"
# (pattern, action, extra arguments or the reason for --help only)
RULES = [
    (r"^bash egs/libritts/run\.sh$", "help", "the whole recipe: 20-30 minutes (tests/recipe runs it on a tiny corpus)"),
    (r"^bash scripts/test\.sh$", "syntax", "the test suite itself"),
    (r"^python -m codec (encode|decode|roundtrip) ", "run", ""),
    (r"^python -m codec\.tokenize ", "run", ""),
    (r"^python -m codec\.code_dump export-hf ", "run", ""),
    (r"^python -m tts\.synthesize ", "run", ""),
    (r"^python -m tts\.train --part ar ", "run", TRAIN_CAP),
    (r"^accelerate launch --multi_gpu ", "help", "needs GPUs; '...' stands for the arguments above"),
    (r"^python -m tts\.evaluate ", "help", "pocketsphinx + resemblyzer scoring takes minutes (tests/tts/test_evaluate.py)"),
    (r"^python -m tts\.demo", "help", "a server (tests/tts/test_demo.py runs it)"),
    (r"^python -m codec\.train ", "help", "a codec training run (tests/codec/test_train.py trains tiny ones)"),
    (r"^python -m codec\.evaluate ", "help", "needs a trained run's checkpoints; '[...]' are optional flags"),
]


def _blocks(kind: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(rf"```{kind}\n(.*?)```", text, re.S)]


def _commands() -> list[str]:
    cmds = []
    for block in _blocks("bash"):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line.split("  #")[0]).strip() if not line.startswith("#") else ""
            if line:
                cmds.append(" ".join(line.split()))
    return cmds


def _rule(cmd: str):
    hits = [r for r in RULES if re.search(r[0], cmd)]
    assert len(hits) == 1, f"README command without exactly one rule in tests/test_readme_examples.py: {cmd}"
    return hits[0]


def _tone(path: Path, seconds: float, sr: int = 16000, f0: float = 150.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * f0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32), sr)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The files the README's commands name, relative to a workspace folder (the commands' cwd)."""
    from data_prep.frontend import TextFrontend
    from tests.codec.helpers_inference import tiny_codec
    from tests.tts.helpers_models import export_model, tiny_models
    from tests.tts.tts_dump_fixtures import write_dump
    w = tmp_path_factory.mktemp("readme")
    exp = w / "egs" / "libritts" / "exp"                 # the recipe's models: a tiny codec of 0.3..6 kbps (as
    codec = tiny_codec(0, n_q=20, codebook_size=64)      # the README's bandwidths), a tiny AR and NAR on it
    codec.save_pretrained(exp / "codec" / "model")
    ar, nar, _ = tiny_models(0, codebook_size=64, n_q=4)
    for part, m in (("ar", ar), ("nar", nar)):
        export_model(m, part, exp / part / "model", codec.checkpoint_sha256, codec, TextFrontend.default())
    (w / "exp").symlink_to(exp)
    (w / "egs" / "libritts" / "conf").symlink_to(REPO / "egs" / "libritts" / "conf")      # the repo's configs
    shutil.copytree(exp / "codec" / "model", w / "DIR")
    _tone(w / "speech.wav", 1.0)
    _tone(w / "p.wav", 2.0)
    _tone(w / "in_dir" / "a.wav", 0.5)
    _tone(w / "in_dir" / "sub" / "b.flac", 0.7, f0=200)
    (w / "items.jsonl").write_text(json.dumps({"id": "first", "text": "A new sentence.", "prompt_wav": "p.wav",
                                               "prompt_text": "What p.wav says."}) + "\n")
    fe = TextFrontend.default()
    fe.save(w / "ph")
    rows, phon = [], []
    for i, sec in enumerate((0.6, 0.9)):
        uid = f"100_1_{i:06d}"
        _tone(w / "wav" / f"{uid}.wav", sec, f0=150 + 40 * i)
        rows.append({"id": uid, "path": f"wav/{uid}.wav", "duration": sec, "sr": 16000, "speaker": "100",
                     "chapter": "1", "text_norm": f"word {i}", "text_orig": f"Word {i}."})
        phon.append({"id": uid, "phonemes": " ".join(fe.phonemize([f"word {i}"])[0])})
    (w / "M.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (w / "ph" / "P.jsonl").write_text("".join(json.dumps(r) + "\n" for r in phon))
    (w / "P.jsonl").symlink_to(w / "ph" / "P.jsonl")
    for subset in ("train-clean-100", "dev-clean"):
        write_dump(w / "data", subset=subset, seed=1 if subset == "dev-clean" else 0)
    return w


def _run(cmd: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_every_readme_command_has_a_rule():
    cmds = _commands()
    assert len(cmds) >= 15
    for c in cmds:
        _rule(c)


@pytest.mark.parametrize("cmd", _commands())
def test_readme_command_runs(cmd, workspace):
    _, action, extra = _rule(cmd)
    if action == "syntax":                          # bash -n: the script parses (running it is the suite)
        r = _run(f"bash -n {REPO / cmd.split()[1]}", workspace)
    elif action == "help":
        mod = re.search(r"-m ([\w.]+)", cmd)
        target = f"python -m {mod.group(1)} --help" if mod else f"bash {REPO / cmd.split()[1]} --help"
        r = _run(target, workspace)
        assert len((r.stdout + r.stderr).strip()) > 50, f"{target}: {r.stdout[-500:]}{r.stderr[-500:]}"
    else:
        r = _run(f"{cmd} {extra}".strip(), workspace)
    assert r.returncode == 0, f"{cmd}\n--- stdout\n{r.stdout[-2000:]}\n--- stderr\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr


def test_readme_python_blocks_run(workspace):
    """The Python blocks as written, `wav` defined first; the Hub upload line is left out (no network)."""
    for block in _blocks("python"):
        code = "\n".join(ln for ln in block.splitlines() if "push_to_hub" not in ln)
        prelude = "import numpy as np\nwav = 0.1 * np.random.default_rng(0).standard_normal(16000).astype('float32')\n"
        r = _run(f"{sys.executable} - <<'PYEOF'\n{prelude}{code}\nPYEOF", workspace)
        assert r.returncode == 0, f"{code}\n--- stderr\n{r.stderr[-3000:]}"


def _guide_commands() -> list[str]:
    text = (REPO / "docs" / "own_corpus.md").read_text(encoding="utf-8")
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if re.match(r"^(python -m |bash egs/)", line):
                cmds.append(" ".join(line.split()))
    return cmds


def test_the_own_corpus_guide_names_existing_commands_and_options():
    """docs/own_corpus.md's commands were run by hand on a corpus of its own layout; this keeps them
    from drifting cheaply: every module and every --option it names is in that command's --help, and every
    name its Python imports exists."""
    helps: dict[str, str] = {}
    cmds = _guide_commands()
    assert len(cmds) >= 10
    for cmd in cmds:
        key = re.search(r"-m ([\w.]+)", cmd).group(1) if "-m " in cmd else "egs/libritts/run.sh"
        if key not in helps:
            target = f"python -m {key} --help" if "-m " in cmd else f"bash {REPO / key} --help"
            r = _run(target, REPO)
            assert r.returncode == 0, f"{target}: {r.stderr[-1000:]}"
            helps[key] = r.stdout + r.stderr
        for opt in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", cmd):
            assert opt in helps[key], f"{cmd}: {opt} is not an option of {key}"
    text = (REPO / "docs" / "own_corpus.md").read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        compile(block, "own_corpus.md", "exec")
        for mod, names in re.findall(r"^from ([\w.]+) import (.+)$", block, re.M):
            m = __import__(mod, fromlist=["_"])
            for name in (n.strip() for n in names.split(",")):
                assert hasattr(m, name), f"{mod}.{name}"
