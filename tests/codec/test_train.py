"""End-to-end tests of codec.train on a tiny config (subprocesses, CPU)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from codec.checkpoint import load_codec
from core.checkpoint import latest_checkpoint, list_checkpoints
from core.config import to_dict
from tests.training_harness import kill_after_checkpoint, losses as _losses, run_training, training_cmd
from tests.training_harness import training_env as _env

from helpers import tiny_config, write_corpus


def _write_cfg(cfg, path: Path) -> Path:
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return path


def _args(cfg_file, exp_dir, *overrides) -> list[str]:
    return ["--config", str(cfg_file), f"train.exp_dir={exp_dir}", *overrides]


def _run(cfg_file, exp_dir, *overrides, env=None, launch=False, check=True):
    return run_training("codec.train", _args(cfg_file, exp_dir, *overrides), env=env, launch=launch, check=check)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root, n_train=6, n_valid=2)
    cfg = tiny_config(root)
    cfg = replace(cfg, train=replace(cfg.train, eval_every=3))
    return root, _write_cfg(cfg, root / "tiny.yaml")


@pytest.fixture(scope="module")
def reference_run(corpus, tmp_path_factory):
    _, cfg_file = corpus
    exp = tmp_path_factory.mktemp("ref")
    _run(cfg_file, exp, "train.max_steps=6")
    return exp


def test_run_writes_layout_and_model(reference_run):
    exp = reference_run
    rows = _losses(exp)
    assert [r["step"] for r in rows] == list(range(6))
    assert any(r["loss_d"] > 0 for r in rows)            # the discriminator joined at disc_start=2
    assert [p.name for p in list_checkpoints(exp)] == ["step-00000003", "step-00000006"]
    ck = latest_checkpoint(exp)
    assert {p.name for p in ck.iterdir()} == {"model.safetensors", "discriminator.safetensors", "config.json", "state.pt"}
    state = torch.load(ck / "state.pt", weights_only=True)
    assert state["step"] == 6
    model = load_codec(exp / "model")
    assert model.encode(torch.randn(1, 1, 800) * 0.1, 2).codes.shape == (1, 2, 50)
    assert json.loads((exp / "train_summary.json").read_text())["step"] == 6
    assert len((exp / "eval.jsonl").read_text().splitlines()) == 2
    assert list((exp / "tb").rglob("events.out.tfevents*"))


def test_stop_and_resume_matches_uninterrupted(corpus, reference_run, tmp_path):
    _, cfg_file = corpus
    _run(cfg_file, tmp_path, "train.max_steps=3")
    assert len(_losses(tmp_path)) == 3
    _run(cfg_file, tmp_path, "train.max_steps=6")
    a, b = _losses(reference_run), _losses(tmp_path)
    assert [r["step"] for r in b] == list(range(6))
    for ra, rb in zip(a, b):
        assert ra["bw"] == rb["bw"]
        assert ra["loss_g"] == pytest.approx(rb["loss_g"], rel=1e-5, abs=1e-7), ra["step"]
        assert ra["loss_d"] == pytest.approx(rb["loss_d"], rel=1e-5, abs=1e-7), ra["step"]


def test_killed_and_resumed_matches_uninterrupted(corpus, reference_run, tmp_path):
    _, cfg_file = corpus
    cmd = training_cmd("codec.train", _args(cfg_file, tmp_path, "train.max_steps=6", "train.ckpt_every=3"))
    kill_after_checkpoint(cmd, tmp_path, 3, step_sleep=0.4)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003"]
    _run(cfg_file, tmp_path, "train.max_steps=6")
    a, b = _losses(reference_run), _losses(tmp_path)
    assert [r["step"] for r in b] == list(range(6))
    for ra, rb in zip(a, b):
        assert ra["loss_g"] == pytest.approx(rb["loss_g"], rel=1e-5, abs=1e-7), ra["step"]


def test_two_ranks_stay_identical(corpus, tmp_path):
    _, cfg_file = corpus
    _run(cfg_file, tmp_path, "train.max_steps=4", "train.eval_every=0", launch=True, env=_env(NDVQ_DEBUG_DIGEST=1))
    d0 = json.loads((tmp_path / "digest-rank0.json").read_text())
    d1 = json.loads((tmp_path / "digest-rank1.json").read_text())
    assert d0["quantizer"] and d0["quantizer"] == d1["quantizer"]
    assert d0["all"] == d1["all"]
    assert json.loads((tmp_path / "train_summary.json").read_text())["world_size"] == 2


def test_nan_steps_are_skipped_and_counted(corpus, tmp_path):
    _, cfg_file = corpus
    _run(cfg_file, tmp_path, "train.max_steps=5", "train.eval_every=0", env=_env(NDVQ_DEBUG_NAN_STEPS="2,3"))
    rows = _losses(tmp_path)
    assert [r["skipped"] for r in rows] == [False, False, True, True, False]
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["counters"]["bad_steps_total"] == 2 and summary["counters"]["bad_in_row"] == 0
    # too many in a row -> a clear error
    p = _run(cfg_file, tmp_path / "abort", "train.max_steps=6", "train.max_bad_steps=2", "train.eval_every=0",
             env=_env(NDVQ_DEBUG_NAN_STEPS="2,3,4"), check=False)
    assert p.returncode == 2 and "non-finite steps in a row" in p.stderr


@pytest.mark.parametrize("kind", ["ndvq", "rvq"])
def test_overfit_one_clip(kind, tmp_path):
    write_corpus(tmp_path, n_train=1, n_valid=1, seconds=0.25)
    cfg = tiny_config(tmp_path, kind=kind)
    cfg = replace(cfg, loss=replace(cfg.loss, disc_start=10 ** 9),
                  optim=replace(cfg.optim, lr=1e-2, warmup_steps=5),
                  seanet=replace(cfg.seanet, n_filters=8),
                  quantizer=replace(cfg.quantizer, ndvq_dead_code_reset=True),
                  data=replace(cfg.data, segment_seconds=0.25, batch_size=2),
                  train=replace(cfg.train, eval_every=0, ckpt_every=0, bandwidths=(16.0,)))
    _run(_write_cfg(cfg, tmp_path / "c.yaml"), tmp_path / "exp", "train.max_steps=150")
    mel = [r["mel"] for r in _losses(tmp_path / "exp")]
    first, last = sum(mel[:3]) / 3, sum(mel[-10:]) / 10
    assert first / last >= 3.0, (kind, first, last)


def test_weight_decay_is_decoupled():
    # A parameter whose loss gradient is zero must shrink by lr*wd*w in a step (AdamW), not by Adam's
    # normalised step of about lr*sign(w) (coupled L2 inside Adam, which held the mini codec near its
    # no-information floor).
    from codec.config import OptimConfig
    from codec.train import build_optimizers
    oc = OptimConfig(lr=1e-3, weight_decay=0.01, betas=(0.8, 0.9), eps=1e-6)
    w = torch.nn.Linear(4, 4, bias=False)
    d = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        w.weight.fill_(0.5)
    opt_g, _ = build_optimizers(w, d, oc)
    before = w.weight.detach().clone()
    w.weight.grad = torch.zeros_like(w.weight)
    opt_g.step()
    torch.testing.assert_close(before - w.weight.detach(), before * oc.lr * oc.weight_decay)


def test_full_bandwidth_prob_trains_every_stage_more_often():
    # full_bandwidth_prob=p: the largest bandwidth on p + (1-p)/len(bandwidths) of the steps; at 0 the
    # draws are the uniform ones of earlier runs (same step -> same bandwidth), so resumes replay.
    import random
    from codec.train import bandwidth_at
    bws = (1.2, 2.0, 3.2, 4.8, 6.0)
    steps = range(4000)
    uniform = [bandwidth_at(s, 3, bws) for s in steps]
    assert uniform == [random.Random(3 * 1_000_003 + s).choice(list(bws)) for s in steps]
    assert abs(uniform.count(6.0) / len(uniform) - 0.2) < 0.03
    assert {uniform.count(b) > 0 for b in bws} == {True}
    full = [bandwidth_at(s, 3, bws, 0.5) for s in steps]
    assert abs(full.count(6.0) / len(full) - 0.6) < 0.03
    assert all(full.count(b) > 0.07 * len(full) for b in bws)
    assert full == [bandwidth_at(s, 3, bws, 0.5) for s in steps]      # a function of (seed, step)
