"""egs/libritts/run.sh on a tiny mini corpus: stages 0-2 (data), then 3-4 (codec, code dump, aligner)."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from core.io import read_jsonl
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


# A codec small enough to train a few steps in seconds (16 kHz, hop 320 and the iSTFT head as the mini config).
TINY_ALIGN_ARGS = "train.max_steps=2 train.valid_every=0 model.channels=16"
TINY_CODEC_ARGS = ("seanet.n_filters=4 seanet.dimension=8 quantizer.n_q=4 quantizer.codebook_size=16 "
                   "quantizer.kmeans_iters=3 train.max_steps=4 train.ckpt_every=2 train.eval_every=0 "
                   "data.batch_size=2 data.num_workers=0 data.valid_items=2 loss.n_mels=16 "
                   "seanet.istft.width=16 seanet.istft.n_blocks=1")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_run_sh_codec_and_code_dump_stages(tmp_path):
    """Stages 0-4: the codec trains under accelerate launch, is scored, and dumps every subset."""
    from codec.code_dump import CodeDump

    cmd = ["bash", str(RUN_SH), "--stop-stage", "4", "--mini-size", "tiny", "--nj", "2",
           "--data-dir", str(tmp_path / "data"), "--exp-dir", str(tmp_path / "exp"),
           "--codec-args", TINY_CODEC_ARGS, "--align-args", TINY_ALIGN_ARGS]
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    data, codec_dir = tmp_path / "data", tmp_path / "exp" / "codec"
    assert "accelerate launch" in (tmp_path / "exp" / "run.log").read_text()
    assert (codec_dir / "model" / "model.safetensors").is_file()
    summary = json.loads((codec_dir / "train_summary.json").read_text())
    assert summary["step"] == 4

    # the evaluation compares the first checkpoint (step 2) with the exported model (step 4)
    scored = json.loads((codec_dir / "eval.json").read_text())
    assert scored["items"] > 0 and [c["step"] for c in scored["checkpoints"]] == ["2", "4"]
    assert all(r["scores"]["mel"]["mean"] > 0 for c in scored["checkpoints"] for r in c["rows"])
    assert "| no information (mean latent) |" in (codec_dir / "eval.md").read_text()
    usage = scored["checkpoints"][-1]["usage"]     # code usage of the final model only
    assert scored["checkpoints"][0]["usage"] == [] and len(usage) == 4
    assert all(1 <= st["codes_used"] <= 16 and 1 <= st["perplexity"] <= 16 for st in usage)

    for subset in ("train-clean-100", "dev-clean", "test-clean"):
        manifest = read_manifest(data / "manifests" / f"{subset}.jsonl")
        phonemes = {r["id"]: r["phonemes"] for r in read_jsonl(data / "phonemes" / f"{subset}.jsonl")}
        dump = CodeDump(data / "codes" / subset)
        assert dump.n_q == 4 and dump.codebook_size == 16 and dump.frame_rate == 50.0
        assert sorted(dump.meta(i)["id"] for i in range(len(dump))) == sorted(r["id"] for r in manifest)
        for row in manifest:
            codes, meta = dump[row["id"]]
            assert codes.shape == (4, math.ceil(meta["num_samples"] / 320))
            assert codes.min() >= 0 and codes.max() < 16
            assert meta["speaker"] == row["speaker"] and meta["text"] == row["text_norm"]
            assert meta["phonemes"] == " ".join(phonemes[row["id"]]) if isinstance(phonemes[row["id"]], list) \
                else meta["phonemes"] == phonemes[row["id"]]

    # the forced aligner: trained under accelerate, every subset's durations fit its dump (docs/durations.md)
    assert (tmp_path / "exp" / "aligner" / "model" / "model.safetensors").is_file()
    for subset in ("train-clean-100", "dev-clean", "test-clean"):
        dump = CodeDump(data / "codes" / subset)
        rows = list(read_jsonl(data / "durations" / f"{subset}.jsonl"))
        assert rows, subset
        for r in rows:
            meta = dump.meta(r["id"])
            assert sum(r["durations"]) == meta["frames"] and len(r["durations"]) == len(meta["phonemes"].split())

    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    for n, name in ((3, "codec"), (4, "codes"), (4, "align")):
        assert f"stage {n} ({name}): already done" in again.stderr
    assert "accelerate launch" not in again.stderr
