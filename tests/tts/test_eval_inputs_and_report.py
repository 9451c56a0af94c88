"""tts.evaluate reads a batch synthesis folder's own results.jsonl; the report's plots and wording are honest."""
import json

import numpy as np
import pytest

from data_prep.audio import save_audio
from tts.evaluation.plots import _spectrogram_figure
from tts.evaluation.report import _markdown
from tts.evaluation.inputs import load_items
from tts.evaluation.scoring import EvalReport, RowScores


def test_load_items_reads_the_synthesizers_results_jsonl(tmp_path):
    out = tmp_path / "run" / "wavs"
    out.mkdir(parents=True)
    save_audio(out / "a.wav", np.zeros(1600, np.float32), 16000)
    save_audio(tmp_path / "run" / "p.wav", np.zeros(16000, np.float32), 16000)   # found from the folder upwards
    rows = [{"id": "a", "wav": "/machine/that/made/it/a.wav", "text": "Hello there.", "prompt_wav": "p.wav",
             "prompt_text": "a prompt"},
            {"id": "b", "text": "Failed one.", "error": "list.jsonl id b: prompt is silent"}]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = load_items(None, out)
    assert [it.id for it in items] == ["a", "b"]
    assert items[0].out_wav == str(out / "a.wav")          # found in the folder, wherever it was written
    assert items[0].text == "Hello there." and items[0].prompt_wav == str(tmp_path / "run" / "p.wav")
    assert items[1].out_wav is None                         # a failed item counts as missing audio


def test_spectrogram_panels_share_one_time_axis(tmp_path):
    pytest.importorskip("matplotlib")
    srcs = []
    for name, sec in (("prompt", 3.0), ("ground truth", 4.0), ("TTS output", 2.3)):
        p = tmp_path / f"{name}.wav"
        save_audio(p, 0.1 * np.random.default_rng(0).standard_normal(int(sec * 16000)).astype(np.float32), 16000)
        srcs.append((name, str(p)))
    fig = _spectrogram_figure(srcs, "x")
    for ax in fig.axes:
        assert ax.get_xlim() == pytest.approx((0.0, 4.0), abs=1e-3)
    assert fig.axes[2].images[0].get_extent()[1] == pytest.approx(2.3, abs=1e-3)   # drawn 2.3 s wide, not stretched


def _report(gt_wer, rs_wer):
    rows = {"ground_truth": RowScores("ground_truth", 4, 0, wer=gt_wer, sim=0.9),
            "resynthesis": RowScores("resynthesis", 4, 0, wer=rs_wer, sim=0.8,
                                     codec_metrics={"pesq": 1.2, "stoi": 0.7, "si_sdr": -31.0, "mel": 0.2}),
            "tts": RowScores("tts", 4, 0, wer=1.5, sim=0.5)}
    setting = {"n_items": 4, "n_speakers": 2, "n_q": 8, "asr": "pocketsphinx", "speaker_encoder": "resemblyzer"}
    return EvalReport(rows=rows, sim_floor=0.5, targets={}, setting=setting, items=[], seconds=1.0)


def test_report_drops_si_sdr_from_the_table_and_says_why():
    md = _markdown(_report(0.2, 0.3), [], [])
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert not any("SI-SDR" in line or "-31.0" in line for line in table)
    assert "SI-SDR" in md and "phase" in md


def test_report_comments_on_ground_truth_scoring_worse_than_resynthesis():
    assert "ground truth scores a worse WER" in _markdown(_report(0.574, 0.216), [], [])
    assert "ground truth scores a worse WER" not in _markdown(_report(0.1, 0.216), [], [])
