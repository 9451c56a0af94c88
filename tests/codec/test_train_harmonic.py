"""codec.train with a harmonic iSTFT head: trains on the corpus's F0 cache (data_prep.pitch), resumes
exactly (the F0 crops are part of the deterministic data), and refuses a missing or partial cache in one
line before training."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from codec.config import ISTFTConfig, PitchConfig
from core.config import to_dict
from data_prep.libritts import read_manifest
from data_prep.pitch import build_cache
from tests.training_harness import losses, run_training

from helpers import tiny_config, write_corpus


@pytest.fixture(scope="module")
def harmonic(tmp_path_factory):
    root = tmp_path_factory.mktemp("hcorpus")
    write_corpus(root, n_train=6, n_valid=2)
    build_cache(read_manifest(root / "train.jsonl"), root / "train.f0.npz")
    cfg = tiny_config(root)
    seanet = replace(cfg.seanet, decoder="istft",
                     istft=ISTFTConfig(width=16, n_blocks=1, mlp_ratio=2.0, pitch=PitchConfig(source="harmonic")))
    cfg = replace(cfg, seanet=seanet, loss=replace(cfg.loss, disc_start=10 ** 6),
                  data=replace(cfg.data, train_f0=(str(root / "train.f0.npz"),)))
    path = root / "harmonic.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return root, path


def _run(cfg_file, exp, *extra, check=True):
    return run_training("codec.train", ["--config", str(cfg_file), f"train.exp_dir={exp}", *extra], check=check)


def test_trains_on_f0_and_resumes_exactly(harmonic, tmp_path):
    _, cfg_file = harmonic
    _run(cfg_file, tmp_path / "ref", "train.max_steps=6")
    ref = losses(tmp_path / "ref")
    assert all(r["f0_ce"] > 0 and r["voicing_bce"] > 0 for r in ref)      # the pitch loss is on
    _run(cfg_file, tmp_path / "cut", "train.max_steps=3")
    _run(cfg_file, tmp_path / "cut", "train.max_steps=6")
    cut = losses(tmp_path / "cut")
    assert [r["step"] for r in cut] == list(range(6))
    for a, b in zip(ref, cut):
        assert a["loss_g"] == pytest.approx(b["loss_g"], rel=1e-5, abs=1e-7), a["step"]
        assert a["f0_ce"] == pytest.approx(b["f0_ce"], rel=1e-5, abs=1e-7), a["step"]


def test_missing_or_partial_f0_cache_is_one_line(harmonic, tmp_path):
    root, cfg_file = harmonic
    p = _run(cfg_file, tmp_path / "a", "data.train_f0=[]", check=False)
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "data.train_f0" in p.stderr and "Traceback" not in p.stderr
    partial = Path(root) / "partial.npz"
    build_cache(read_manifest(root / "train.jsonl")[:2], partial)
    p = _run(cfg_file, tmp_path / "b", f"data.train_f0=[{partial}]", check=False)
    assert p.returncode == 1 and "lack 4 of 6" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "b" / "checkpoints").exists()
