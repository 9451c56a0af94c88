"""codec.evaluation.report names bitrate rows and plots by the rate the codes actually take, and says how mel L1
is computed for a codec that is not at 24 kHz."""
from __future__ import annotations

import pytest

from codec.evaluation import report as R


def _rows():
    s = {"mean": 0.7, "std": 0.1, "n": 3}
    return [R.Row("codes", 1.5, 3, {"stoi": s}, actual_kbps=1.2), R.Row("codes", 6.0, 15, {"stoi": s}, actual_kbps=6.0),
            R.Row("no_information", scores={"stoi": {"mean": 0.4, "std": 0.0, "n": 3}})]


def test_rows_are_named_by_their_actual_rate():
    a, b, c = _rows()
    assert a.name == "1.2 kbps (asked 1.5)" and a.rate == 1.2
    assert b.name == "6 kbps"
    assert R.Row("codes", 1.5, 3).name == "1.5 kbps"                # an older result without actual_kbps


def test_markdown_says_actual_rates_and_how_mel_is_computed():
    from dataclasses import asdict
    res = R.CheckpointResult("exp/codec/model", "1400", "x", _rows())
    report = {"keys": ["stoi"], "checkpoints": [asdict(res)], "items": 3, "manifests": ["m.jsonl"],
              "max_seconds": 10.0, "sample_rate": 16000, "packages": {}, "wall_seconds": 1.0}
    md = R.markdown_report(report, plots=False)
    assert "| 1.2 kbps (asked 1.5) | 3 |" in md and "| 6 kbps | 15 |" in md
    assert "resampled to 24 kHz (for a 16 kHz codec the bins above 8 kHz hold no signal" in md
    assert "80 bins, 24 kHz." not in md


def test_metric_plots_use_the_actual_rate(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    figs = []
    monkeypatch.setattr(R, "_save", lambda fig, path: figs.append(fig))
    res = R.CheckpointResult("exp/codec/model", "1400", "x", _rows())
    R.write_plots(tmp_path, [res], ["stoi"], [], {}, 16000)
    ax = figs[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1.2", "6"]
    assert "actual" in ax.get_xlabel()


def test_markdown_explains_si_sdr():
    from dataclasses import asdict
    res = R.CheckpointResult("exp/codec/model", "1400", "x", _rows())
    report = {"keys": ["stoi", "si_sdr"], "checkpoints": [asdict(res)], "items": 3, "manifests": ["m.jsonl"],
              "max_seconds": 10.0, "sample_rate": 16000, "packages": {}, "wall_seconds": 1.0}
    md = R.markdown_report(report, plots=False)
    assert "SI-SDR compares waveforms sample by sample" in md and "ceilings included" in md
    report["keys"] = ["stoi"]
    assert "SI-SDR compares" not in R.markdown_report(report, plots=False)
