"""codec.evaluate: rows per bitrate through Codec, reference rows, code usage, missing metrics, outputs."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import evaluate as E
from codec.evaluation import report as R
from tests.codec.helpers import tiny_wav
from tests.codec.helpers_inference import one_thread, tiny_codec  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    first, last = tiny_codec(seed=1), tiny_codec(seed=2)
    first.save_pretrained(tmp / "first")
    last.save_pretrained(tmp / "last")
    rows = []
    for i in range(3):
        p = tmp / f"u{i}.wav"
        sr = last.sample_rate
        sf.write(p, tiny_wav(i, 0.5 + 0.2 * i, sr), sr)
        rows.append({"id": f"u{i}", "path": str(p), "duration": 0.5 + 0.2 * i, "sr": sr, "speaker": "1",
                     "chapter": "1", "text_norm": "t", "text_orig": "T"})
    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp, last


def test_bitrate_codes_are_prefixes_of_the_full_encode(setup):
    """Why one encode per checkpoint is enough: a bitrate's codes equal the first n_q stages."""
    _, codec = setup
    wav = tiny_wav(7, 0.6, codec.sample_rate)
    full = codec.encode(wav, n_q=codec.n_q).codes
    for k in range(1, codec.n_q):
        assert torch.equal(codec.encode(wav, n_q=k).codes, full[:, :k])


def test_rows_usage_outputs_and_missing_metric(setup, monkeypatch):
    tmp, codec = setup
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pesq" else real(n, *a))
    out = tmp / "res" / "eval"
    rep = E.evaluate([tmp / "first", tmp / "last"], [str(tmp / "m.jsonl")], metrics=("pesq", "si_sdr", "mel"),
                     jobs=1, out=out)
    first, last = rep["checkpoints"]
    bws = list(codec.bandwidths)
    assert [r["kbps"] for r in first["rows"]] == bws and {r["kind"] for r in first["rows"]} == {"codes"}
    assert [r["kind"] for r in last["rows"]] == ["codes"] * len(bws) + ["unquantized", "no_information"]
    assert [r["n_q"] for r in last["rows"][:len(bws)]] == [codec.resolve_n_q(b) for b in bws]
    for r in last["rows"]:
        assert r["scores"]["pesq"] is None                          # missing, never a number
        assert r["scores"]["mel"]["n"] == 3 and r["scores"]["mel"]["mean"] > 0
        assert np.isfinite(r["scores"]["si_sdr"]["mean"])
    assert first["usage"] == [] and len(last["usage"]) == codec.n_q
    for u in last["usage"]:
        assert u["codes_used"] + u["unused"] == codec.codebook_size and 1 <= u["perplexity"] <= u["codes_used"]
    rel = [u["residual_rms_rel"] for u in last["usage"]]
    assert rel[-1] < 1.0
    assert last["frames"] == sum(-(-len(tiny_wav(i, 0.5 + 0.2 * i, codec.sample_rate)) // codec.hop_length)
                                 for i in range(3))
    md = (tmp / "res" / "eval.md").read_text()
    assert "| unquantized latent |" in md and "| no information (mean latent) |" in md and "missing" in md
    assert "Against earlier checkpoints" in md and "## Code usage per stage" in md
    assert json.loads((tmp / "res" / "eval.json").read_text())["items"] == 3
    for name in R.PLOT_NAMES:
        assert (out / name).stat().st_size > 1000, name


def test_no_information_row_ignores_the_input(setup, tmp_path):
    """The floor row's audio depends on the utterance only through its length and RMS scale."""
    tmp, codec = setup
    from codec.api import Codec
    from codec.checkpoint import load_codec
    wavs = [tiny_wav(0, 0.5, codec.sample_rate), tiny_wav(1, 0.5, codec.sample_rate)]
    scorer = E.Scorer(codec.sample_rate, ["si_sdr"], jobs=1)
    _, extra = E.evaluate_checkpoint(tmp / "last", wavs, [codec.bandwidths[0]], scorer, full=True, keep_audio=True)
    floor = extra["audio"][R.ROW_TITLES["no_information"]]
    c = Codec(load_codec(tmp / "last"))
    s0, s1 = (c.rms_scale(w) for w in wavs)
    np.testing.assert_allclose(floor[0] / s0, floor[1] / s1, atol=1e-6)


def test_run_checkpoints_spread_from_first_to_last(tmp_path):
    """--exp-dir scores `points - 1` saved checkpoints evenly spaced from the first, then model/."""
    exp = tmp_path / "run"
    (exp / "model").mkdir(parents=True)
    (exp / "model" / "model.safetensors").write_bytes(b"x")
    steps = [200, 400, 600, 800, 1000, 1200, 1400]
    for s in steps:
        (exp / "checkpoints" / f"step-{s:08d}").mkdir(parents=True)
    picked = lambda n: [p.name for p in E.run_checkpoints(exp, n)]  # noqa: E731
    assert picked(1) == ["model"]
    assert picked(2) == ["step-00000200", "model"]
    assert picked(3) == ["step-00000200", "step-00000800", "model"]
    assert picked(4) == ["step-00000200", "step-00000600", "step-00001000", "model"]
    assert picked(50) == [f"step-{s:08d}" for s in steps] + ["model"]
    (exp / "train_summary.json").write_text(json.dumps({"step": 1400}))     # the model is step 1400's
    assert picked(50) == [f"step-{s:08d}" for s in steps[:-1]] + ["model"]
    assert picked(2) == ["step-00000200", "model"]
    with pytest.raises(ValueError, match="points=0"):
        E.run_checkpoints(exp, 0)
    (exp / "model" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no exported model"):
        E.run_checkpoints(exp, 3)


def test_learning_curve_from_losses_and_checkpoints(setup, tmp_path):
    """learning_curve.png is drawn from losses.jsonl (a line cut by a kill is skipped) and is linked."""
    tmp, codec = setup
    ck = tmp_path / "checkpoints" / "step-00000002"
    codec.save_pretrained(ck)
    losses = tmp_path / "losses.jsonl"
    lines = [json.dumps({"step": s, "mel": 1.0 / (s + 1), "skipped": s == 3}) for s in range(40)]
    losses.write_text("\n".join(lines) + '\n{"step": 40, "me')
    out = tmp_path / "eval"
    rep = E.evaluate([ck, tmp / "last"], [str(tmp / "m.jsonl")], metrics=("si_sdr", "mel"), jobs=1, out=out,
                     losses=losses)
    assert rep["learning_curve"] == R.CURVE_PLOT
    assert (out / R.CURVE_PLOT).stat().st_size > 1000
    assert f"(eval/{R.CURVE_PLOT})" in (tmp_path / "eval.md").read_text()
    rep = E.evaluate([tmp / "last"], [str(tmp / "m.jsonl")], metrics=("mel",), jobs=1, out=tmp_path / "e2")
    assert "learning_curve" not in rep and R.CURVE_PLOT not in (tmp_path / "e2.md").read_text()


def test_oracle_rows_are_ceilings_of_the_true_magnitude(setup, tmp_path):
    """--oracles: the reference's own STFT magnitude with a random / Griffin-Lim phase. Griffin-Lim
    finds a phase consistent with the magnitude, so its audio is closer to the reference than random
    phase; each row keeps the reference's length and is deterministic."""
    from codec.evaluation.oracle import oracle_magnitude
    t = np.arange(8000) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    mag = lambda y: torch.stft(torch.from_numpy(y), 320, 80, window=torch.hann_window(320),  # noqa: E731
                               return_complex=True).abs()
    err = {p: float((mag(oracle_magnitude(wav, 80, p)) - mag(wav)).abs().mean()) for p in ("random", "griffin_lim")}
    assert err["griffin_lim"] < 0.5 * err["random"], err
    assert oracle_magnitude(wav, 80, "random").shape == wav.shape
    assert np.array_equal(oracle_magnitude(wav, 80, "griffin_lim"), oracle_magnitude(wav, 80, "griffin_lim"))
    with pytest.raises(ValueError, match="phase='zero'"):
        oracle_magnitude(wav, 80, "zero")
    tmp, codec = setup
    rep = E.evaluate([tmp / "last"], [str(tmp / "m.jsonl")], metrics=("si_sdr", "mel"), jobs=1,
                     out=tmp_path / "eval", plots=False, oracles=True)
    rows = {r["kind"]: r for r in rep["checkpoints"][-1]["rows"]}
    assert {"oracle_random", "oracle_griffin_lim"} <= set(rows)
    assert rows["oracle_griffin_lim"]["scores"]["mel"]["mean"] < rows["oracle_random"]["scores"]["mel"]["mean"]
    assert "| true STFT magnitude, Griffin-Lim phase |" in (tmp_path / "eval.md").read_text()
