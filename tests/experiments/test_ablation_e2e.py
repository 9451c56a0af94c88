"""`python -m experiments.ablation --tiny` mechanics: train, skip when finished, resume, recompute, report.

A tiny codec config and corpus (tests/codec/helpers.py); training runs as real `python -m codec.train`
subprocesses, evaluation in this process with one metric job.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
import yaml

from experiments.ablation.__main__ import main
from core.config import to_dict
from core.io import iter_jsonl
from tests.codec.helpers import tiny_config, write_corpus


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("abl")
    write_corpus(root, n_train=4, n_valid=3, seconds=0.3)
    cfg = tiny_config(root)
    cfg = replace(cfg, loss=replace(cfg.loss, disc_start=10**6), train=replace(cfg.train, ckpt_every=2),
                  data=replace(cfg.data, num_workers=0))
    conf = root / "tiny.yaml"
    conf.write_text(yaml.safe_dump(to_dict(cfg)))
    return root, conf


def _args(root, conf, *extra):
    return ["--tiny", "--launcher", "python", "--jobs", "1", "--codec-conf", str(conf), "--out", str(root / "out"),
            "--train-manifest", str(root / "train.jsonl"), "--test-manifest", str(root / "valid.jsonl"),
            "--latent-levels", "0.1 2", "--snrs", "10", *extra]


@pytest.mark.slow
def test_tiny_ablation_is_resumable_and_reports_missing_runs(setup, caplog):
    root, conf = setup
    out = root / "out"
    caplog.set_level(logging.INFO, logger="experiments.ablation")
    # 1. a piece at a time: only ndvq and rvq, and only one training in this invocation
    main(_args(root, conf, "--runs", "ndvq,rvq", "--stop-after", "1", "--steps", "2", "--no-plots"))
    ndvq, rvq = out / "runs" / "ndvq" / "seed0", out / "runs" / "rvq" / "seed0"
    assert (ndvq / "result.json").is_file() and (ndvq / ".done.train").is_file()
    assert not rvq.exists()
    md = (out / "report.md").read_text()
    assert "| rvq/seed0 | missing |" in md and "| ndvq_authors/seed0 | missing |" in md
    assert "Not finished (left out of every number)" in md
    rep = json.loads((out / "report.json").read_text())
    assert {r["run"]: r["status"] for r in rep["runs"]}["ndvq/seed0"] == "done"
    res = json.loads((ndvq / "result.json").read_text())
    assert [r["kind"] for r in res["clean"]["rows"]][-2:] == ["unquantized", "no_information"]
    assert set(res["robustness"]["input_flips"]) == {"white@10", "babble@10"}
    assert set(res["robustness"]["latent_flips"]) == {"0.1", "2"} and len(res["codestats"]) == 4
    assert res["codestats"][0]["sigma_quantiles"] is not None

    # 2. again: ndvq is skipped (its result untouched), rvq is trained; the verdict compares them
    mtime = (ndvq / "result.json").stat().st_mtime_ns
    caplog.clear()
    main(_args(root, conf, "--runs", "ndvq,rvq", "--steps", "2"))
    assert "ndvq/seed0: done, skipping" in caplog.text
    assert (ndvq / "result.json").stat().st_mtime_ns == mtime
    assert (rvq / "result.json").is_file()
    rep = json.loads((out / "report.json").read_text())
    comps = [c for c in rep["comparisons"] if c["variant"] == "ndvq"]
    assert comps and {c["outcome"] for c in comps} == {"undetermined"}     # one seed: no spread
    assert json.loads((rvq / "result.json").read_text())["codestats"][0]["sigma_quantiles"] is None
    for p in ("metrics_vs_bitrate", "robustness", "flips", "code_usage", "learning_curves"):
        assert (out / "plots" / f"{p}.png").stat().st_size > 1000

    # 3. a deleted result is recomputed without training again
    (rvq / "result.json").unlink()
    losses = len(list(iter_jsonl(rvq / "losses.jsonl")))
    caplog.clear()
    main(_args(root, conf, "--runs", "rvq", "--steps", "2", "--no-plots"))
    assert (rvq / "result.json").is_file() and "training" not in caplog.text
    assert len(list(iter_jsonl(rvq / "losses.jsonl"))) == losses

    # 4. a larger budget resumes from the newest checkpoint: steps 2, 3 are new, the rows of steps 0, 1
    # (with their measured step times) are the first invocation's, not a rerun's
    before = list(iter_jsonl(rvq / "losses.jsonl"))
    main(_args(root, conf, "--runs", "rvq", "--steps", "4", "--no-plots"))
    after = list(iter_jsonl(rvq / "losses.jsonl"))
    assert [r["step"] for r in after] == [0, 1, 2, 3] and after[:2] == before
    assert json.loads((rvq / ".done.train").read_text())["steps"] == 4
    assert json.loads((rvq / "result.json").read_text())["train"]["step"] == 4

    # 5. --report-only touches no run
    mtime = (rvq / "result.json").stat().st_mtime_ns
    main(_args(root, conf, "--report-only", "--steps", "4", "--no-plots"))
    assert (rvq / "result.json").stat().st_mtime_ns == mtime
    runs = {r["run"]: r["status"] for r in json.loads((out / "report.json").read_text())["runs"]}
    assert runs["rvq/seed0"] == "done" and runs["ndvq/seed0"] == "partial"     # trained for 2 < 4 steps
