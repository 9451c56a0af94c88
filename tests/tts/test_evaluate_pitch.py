"""tts.evaluate's evaluation that can tell: bootstrap intervals, pitch against the prompt and the
recording, the SIM floors (codec-domain, nearest training voice), and the report's new rows. Fast."""
from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.pitch import track_f0
from tts.evaluation import bootstrap as B
from tts.evaluation import pitch as P
from tts.evaluation import voices as V

SR = 16000


def harmonic(f0: float, seconds: float = 1.0, glide: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + glide * np.sin(2 * np.pi * 2 * t))
    ph = 2 * np.pi * np.cumsum(f) / SR
    return (0.2 * sum(np.sin(h * ph) / h for h in range(1, 10))).astype(np.float32)


def buzz(seconds: float = 1.0) -> np.ndarray:
    """A 50 Hz pulse train: the frame-rate buzz of a decoder whose frames add as one pulse per hop."""
    x = np.zeros(int(seconds * SR), np.float32)
    click = 0.5 * np.exp(-np.arange(80) / 10.0) * np.cos(2 * np.pi * 700 * np.arange(80) / SR)
    for s in range(0, len(x) - 80, SR // 50):
        x[s:s + 80] += click
    return x


def test_bootstrap_interval_contains_the_mean_narrows_and_repeats():
    rng = np.random.default_rng(1)
    small, big = rng.normal(0.6, 0.1, 16), rng.normal(0.6, 0.1, 256)
    lo, hi = B.mean_ci(small)
    assert lo < small.mean() < hi
    lo2, hi2 = B.mean_ci(big)
    assert lo2 < big.mean() < hi2 and (hi2 - lo2) < 0.5 * (hi - lo)       # 16x the items: ~1/4 the width
    assert B.mean_ci(small) == [lo, hi]                                   # fixed seed
    assert B.mean_ci([None, float("nan")]) is None and B.mean_ci([0.5, None]) == [0.5, 0.5]
    errors, words = [1, 0, 3, 2], [10, 10, 10, 10]
    lo, hi = B.ratio_ci(errors, words)
    assert lo <= sum(errors) / sum(words) <= hi and lo >= 0
    with pytest.raises(ValueError, match="2 numerators but 1"):
        B.ratio_ci([1, 2], [3])
    assert B.fmt_ci(0.5, [0.4, 0.6]) == "0.500 [0.400, 0.600]" and B.fmt_ci(None, None) == "n/a"


def test_pitch_against_the_prompt_and_the_recording_tells_a_voice_from_a_buzz():
    prompt, rec = track_f0(harmonic(220.0, glide=0.05), SR), track_f0(harmonic(220.0, glide=0.05), SR)
    same = P.item_pitch(rec, prompt, ref=rec)
    assert abs(same["st_from_prompt"]) < 0.1 and same["vs_recording"]["cents_median"] < 1
    assert 1.0 < same["f0_range_st"] < 3.0                     # +-5 % glide: about 1.7 semitones
    off = P.item_pitch(track_f0(buzz(), SR), prompt, ref=rec)
    assert off["st_from_prompt"] == pytest.approx(12 * np.log2(50 / 220), abs=1.0)
    assert off["vs_recording"]["gpe"] > 0.95
    row = P.row_summary([same, off, None])
    assert row["n"] == 2 and row["within_2st"] == 0.5 and row["within_2st_ci"][0] <= 0.5 <= row["within_2st_ci"][1]
    frames = P.frame_summary([(track_f0(buzz(), SR), rec)] * 3)
    assert frames["cents_median"] > 2000 and frames["gpe_ci"] == [1.0, 1.0]
    # the floor: each prompt against the other speakers' recordings (a low and a high voice)
    low, high = track_f0(harmonic(110.0), SR), track_f0(harmonic(230.0), SR)
    floor = P.floor_summary(["a", "b"], [low, high], [low, high])
    assert floor["n"] == 2 and floor["within_2st"] == 0.0 and floor["abs_st_mean"] == pytest.approx(12.8, abs=0.3)
    t = P.pitch_target(row)
    assert t["limit"] == 0.8 and not t["met"] and P.pitch_target({"within_2st": None}) is None
    assert P.female_male_items([120.0, None, 250.0, 90.0]) == [2, 3]


def test_codec_domain_floor_and_nearest_training_voice(tmp_path):
    e = np.eye(3, dtype=np.float32)
    # item 0 (speaker a) against the other speaker's output only
    assert V.cross_speaker_means(["a", "a", "b"], [e[0], e[0], e[0] + e[2]], [e[0], e[1], e[0]]) == \
        pytest.approx([1.0, 1.0, 0.5 * 2 ** -0.5])
    assert V.cross_speaker_means([None], [e[0]], [e[0]]) == [None]
    voices = {"s1": np.stack([e[0], e[1]]), "s2": np.stack([e[2]])}
    assert V.nearest_voice(e[2], voices) == (pytest.approx(1.0), "s2")
    assert V.nearest_voice(None, voices) == (None, None)
    rows = [{"id": f"{s}_{i}", "speaker": s, "path": f"{s}_{i}.wav", "duration": d}
            for s in ("10", "20", "30") for i, d in enumerate((3.0, 1.0, 4.0, 5.0, 6.0))]
    m = tmp_path / "train.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    picks = V.pick_training_utterances(m, per_speaker=2, exclude=["30"])
    assert sorted(picks) == ["10", "20"] and [p.rsplit("/", 1)[-1] for p in picks["10"]] == ["10_0.wav", "10_2.wav"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        V.pick_training_utterances(tmp_path / "none.jsonl")


def test_report_has_intervals_pitch_rows_and_floors():
    from tts.evaluation.report import _markdown
    from tts.evaluation.scoring import EvalReport, RowScores, targets
    pitch = {"n": 4, "within_2st": 0.25, "within_2st_ci": [0.0, 0.75], "abs_st_mean": 9.0, "abs_st_ci": [5.0, 13.0],
             "f0_median_hz": 50.0, "range_st_mean": 0.5, "range_diff_mean": -4.0, "range_diff_ci": [-5.0, -3.0]}
    vs = {"cents_median": 1500.0, "cents_median_ci": [1400.0, 1600.0], "within_50": 0.0, "within_50_ci": [0.0, 0.0],
          "gpe": 0.99, "gpe_ci": [0.98, 1.0], "vde": 0.2, "vde_ci": [0.1, 0.3]}
    rows = {"ground_truth": RowScores("ground_truth", 4, 0, wer=0.1, sim=0.9, ci={"wer": [0.05, 0.2], "sim": [0.88, 0.92]},
                                      pitch={**pitch, "within_2st": 1.0}),
            "resynthesis": RowScores("resynthesis", 4, 0, wer=0.1, sim=0.65, pitch={**pitch, "vs_recording": vs}),
            "tts": RowScores("tts", 4, 0, wer=0.2, sim=0.58, ci={"sim": [0.55, 0.61]}, pitch=pitch)}
    floors = {"different_speaker": {"sim": 0.56, "sim_ci": [0.55, 0.57], "per_item": [0.56] * 4,
                                    "pitch": {"n": 4, "within_2st": 0.1, "within_2st_ci": [0.0, 0.2]}},
              "codec_different_speaker": {"sim": 0.6, "sim_ci": [0.58, 0.62], "per_item": [0.6] * 4},
              "nearest_training_voice": {"sim": 0.8, "sim_ci": [0.77, 0.83], "per_item": [0.8] * 4,
                                         "n_training_speakers": 40, "recordings_per_speaker": 3}}
    t = targets(rows, 0.56, {})
    t["pitch"] = P.pitch_target(pitch)
    rep = EvalReport(rows=rows, sim_floor=0.56, targets=t, setting={"n_items": 4, "n_speakers": 2, "asr": "x",
                                                                       "speaker_encoder": "y"},
                     items=[], seconds=1.0, floors=floors)
    md = _markdown(rep, [], [])
    for s in ("0.580 [0.550, 0.610]", "| codec resynthesis of another speaker (codec-domain SIM floor) |",
              "| nearest training voice |", "0.800 [0.770, 0.830]", "40 training speakers", "## Pitch",
              "| ground truth (same-speaker ceiling) | 4 | 1.000", "| different speaker (floor) | 4 | 0.100 [0.000, 0.200]",
              "1500 [1400, 1600]", "TTS median F0 within 2 semitones of the prompt's on >= 80% of the items: TTS 0.25 "
              "[0.00, 0.75] vs limit 0.80: **NOT met**", "bootstrap 95 % interval",
              "the low end of its 95 % interval > floor + 0.1, and SIM >= 0.8 x the resynthesis's: TTS 0.580 "
              "[0.550, 0.610] vs 0.710 / 0.660 / 0.520"):
        assert s in md, s
    lines = md.splitlines()
    for start in (next(i for i, x in enumerate(lines) if x.startswith("| row")), lines.index("## Pitch") + 2):
        block = [x for x in lines[start:start + 12] if x.startswith("|")]
        stop = next((k for k, x in enumerate(lines[start:]) if not x.startswith("|")), len(block))
        block = lines[start:start + stop]
        assert len(block) >= 5 and len({x.count("|") for x in block}) == 1, block     # every row fills the columns
