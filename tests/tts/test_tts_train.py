"""End-to-end tests of tts.train on a synthetic code dump (subprocesses, CPU, a tiny model)."""
from __future__ import annotations

import json
import math

import pytest
import yaml

from core.checkpoint import list_checkpoints
from tests.training_harness import kill_after_checkpoint, losses as _losses, run_training, training_cmd
from tests.training_harness import training_env as _env
from tts.checkpoint import CodecMismatch, load_tts_model

from tts_dump_fixtures import write_dump

SHA = "c0dec" + "0" * 59


def _args(part, cfg_file, exp_dir, *overrides) -> list[str]:
    return ["--part", part, "--config", str(cfg_file), f"train.exp_dir={exp_dir}", *overrides]


def _run(part, cfg_file, exp_dir, *overrides, env=None, launch=False, check=True):
    return run_training("tts.train", _args(part, cfg_file, exp_dir, *overrides), env=env, launch=launch, check=check)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tts")
    write_dump(root, n_speakers=3, per_speaker=6, sha=SHA, subset="train")
    write_dump(root, n_speakers=2, per_speaker=3, sha=SHA, subset="dev", seed=1)
    cfg = {
        "model": {"n_layers": 1, "d_model": 32, "n_heads": 2, "ffn_mult": 2, "dropout": 0.1, "n_q": 4},
        "data": {"train_dump": str(root / "codes" / "train"), "valid_dump": str(root / "codes" / "dev"),
                 "min_seconds": 0.3, "max_frames_per_batch": 300, "num_workers": 0,
                 "prompt_min_seconds": 0.1, "prompt_max_seconds": 0.4},
        "optim": {"lr": 3e-3, "warmup_steps": 2},
        "train": {"max_steps": 6, "log_every": 1, "valid_every": 3, "ckpt_every": 3, "keep_last": 5},
        "nar": {"optim": {"lr": 2e-3}},
    }
    cfg_file = root / "tiny.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    return root, cfg_file


@pytest.fixture(scope="module")
def reference(setup, tmp_path_factory):
    _, cfg_file = setup
    runs = {}
    for part in ("ar", "nar"):
        exp = tmp_path_factory.mktemp(f"ref_{part}")
        _run(part, cfg_file, exp)
        runs[part] = exp
    return runs


@pytest.mark.parametrize("part", ["ar", "nar"])
def test_run_writes_layout_and_loadable_model(reference, part):
    exp = reference[part]
    rows = _losses(exp)
    assert [r["step"] for r in rows] == list(range(6)) and not any(r["skipped"] for r in rows)
    assert rows[0]["lr"] < rows[1]["lr"]                          # warmup
    assert [p.name for p in list_checkpoints(exp)] == ["step-00000003", "step-00000006"]
    valid = [json.loads(ln) for ln in (exp / "valid.jsonl").read_text().splitlines()]
    assert [v["step"] for v in valid] == [3, 6]
    keys = ["acc_k1"] if part == "ar" else ["acc_k2", "acc_k3", "acc_k4"]
    assert all(0 <= v[k] <= 1 for v in valid for k in keys)      # top-1 per codebook
    # both parts report how much the text and the prompt's voice help (finite numbers, any sign this early)
    assert all(math.isfinite(v[k]) for v in valid for k in ("text_gain_nats", "prompt_gain_nats"))
    assert all(math.isfinite(v[f"loss_k{k[5:]}"]) for v in valid for k in keys)
    loaded = load_tts_model(exp / "model", codec_sha256=SHA)
    assert loaded.part == part and loaded.meta["codec_sha256"] == SHA
    assert loaded.meta["codec"] == {"sample_rate": 24000, "frame_rate": 75.0, "n_q": 4, "codebook_size": 16}
    assert loaded.config.model.codebook_size == 16                # taken from the dump
    assert "fingerprint" in loaded.meta["frontend"]
    assert loaded.config.optim.lr == (2e-3 if part == "nar" else 3e-3)   # the part section applied
    assert loaded.config.ar == {} and loaded.config.nar == {}
    summary = json.loads((exp / "train_summary.json").read_text())
    assert summary["step"] == 6 and summary["part"] == part and summary["data"]["train"]["kept"] == 18
    assert list((exp / "tb").rglob("events.out.tfevents*"))
    assert (exp / "curves.png").stat().st_size > 0 and f"top-1 codebook {keys[0][5:]}" in (exp / "valid.md").read_text()
    assert "Prompt gain" in (exp / "valid.md").read_text()
    with pytest.raises(CodecMismatch, match=SHA):
        load_tts_model(exp / "model", codec_sha256="f" * 64)


def test_killed_and_resumed_matches_uninterrupted(setup, reference, tmp_path):
    _, cfg_file = setup
    kill_after_checkpoint(training_cmd("tts.train", _args("nar", cfg_file, tmp_path)), tmp_path, 3, step_sleep=0.5)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003"]
    _run("nar", cfg_file, tmp_path)
    a, b = _losses(reference["nar"]), _losses(tmp_path)
    assert [r["step"] for r in b] == list(range(6))
    for ra, rb in zip(a, b):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5, abs=1e-7), ra["step"]
        assert {k for k in ra if k.startswith("acc_k")} == {k for k in rb if k.startswith("acc_k")}  # same stages


def test_two_ranks_stay_identical(setup, tmp_path):
    _, cfg_file = setup
    _run("nar", cfg_file, tmp_path, "train.max_steps=4", "train.valid_every=2", launch=True,
         env=_env(NDVQ_DEBUG_DIGEST=1))
    d0 = json.loads((tmp_path / "digest-rank0.json").read_text())
    d1 = json.loads((tmp_path / "digest-rank1.json").read_text())
    assert d0["all"] == d1["all"]
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 4
    # every rank validated its share: the reduced token count is the whole dev set's
    one = [json.loads(ln) for ln in (tmp_path / "valid.jsonl").read_text().splitlines()]
    assert [v["step"] for v in one] == [2, 4] and one[0]["tokens"] > 0


def test_nonfinite_steps_are_skipped_and_counted(setup, tmp_path):
    _, cfg_file = setup
    _run("ar", cfg_file, tmp_path, "train.max_steps=5", "train.valid_every=0", env=_env(NDVQ_DEBUG_NAN_STEPS="1,2"))
    rows = _losses(tmp_path)
    assert [r["skipped"] for r in rows] == [False, True, True, False, False]
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["counters"]["bad_steps_total"] == 2 and summary["counters"]["bad_in_row"] == 0
    p = _run("ar", cfg_file, tmp_path / "abort", "train.max_steps=6", "train.max_bad_steps=2",
             "train.valid_every=0", env=_env(NDVQ_DEBUG_NAN_STEPS="2,3,4"), check=False)
    assert p.returncode == 2 and "non-finite steps in a row" in p.stderr


def test_resuming_on_codes_of_another_codec_is_an_error(setup, reference, tmp_path):
    # in-process: train() checks dumps and checkpoints before it creates the Accelerator
    import shutil

    from tts.train import load_tts_config, train
    _, cfg_file = setup
    other = tmp_path / "other"
    write_dump(other, n_speakers=3, per_speaker=6, sha="e" * 64, subset="train")
    shutil.copytree(reference["ar"] / "checkpoints", tmp_path / "exp" / "checkpoints")
    cfg = load_tts_config([str(cfg_file)], [f"train.exp_dir={tmp_path / 'exp'}", "data.valid_dump=null",
                                            f"data.train_dump={other / 'codes' / 'train'}"], "ar")
    with pytest.raises(CodecMismatch, match=f"{SHA}.*{'e' * 64}"):              # names both codecs
        train(cfg, "ar")
    with pytest.raises(ValueError, match="is a AR checkpoint"):                  # another part
        train(load_tts_config([str(cfg_file)], [f"train.exp_dir={tmp_path / 'exp'}"], "nar"), "nar")
    # a validation dump of another codec is refused too
    cfg = load_tts_config([str(cfg_file)], [f"train.exp_dir={tmp_path / 'exp2'}",
                                            f"data.valid_dump={other / 'codes' / 'train'}"], "ar")
    with pytest.raises(CodecMismatch, match="validation dump"):
        train(cfg, "ar")
    assert not (tmp_path / "exp2").exists()


def test_cli_reports_a_codec_mismatch(setup, reference, tmp_path):
    import shutil
    _, cfg_file = setup
    shutil.copytree(reference["nar"] / "checkpoints", tmp_path / "checkpoints")
    rec = json.loads((tmp_path / "checkpoints" / "step-00000006" / "config.json").read_text())
    rec["codec_sha256"] = "e" * 64
    (tmp_path / "checkpoints" / "step-00000006" / "config.json").write_text(json.dumps(rec))
    p = _run("nar", cfg_file, tmp_path, check=False)
    assert p.returncode == 1 and SHA in p.stderr and "e" * 64 in p.stderr
