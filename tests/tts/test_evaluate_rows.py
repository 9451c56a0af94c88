"""tts.evaluate's rows that isolate the parts: PER from the project's phoneme recognizer on
every row, the "ground-truth codebook 1 + NAR" row, duration ratios, word deletions / insertions, and
the report's targets. Tiny random models: fast."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tts.evaluation.scoring import EvalReport, RowScores, duration_summary, phone_scores, targets, word_errors

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

TEXTS = ["The old farmer carried seven heavy baskets.", "A bright yellow kite flew over the village.",
         "My sister painted the kitchen door green.", "The children watched the little boat."]


def test_phone_scores_zero_for_the_reference_and_counts_edits():
    refs = [["ð", "ə", "k", "æ", "t"], ["d", "ɑ", "ɡ"]]
    per, per_item, d = phone_scores(refs, [list(r) for r in refs])
    assert per == 0.0 and per_item == [0.0, 0.0]
    assert d == {"substitutions": 0, "deletions": 0, "insertions": 0, "ref_phones": 8}
    # item 0: "ə" deleted, "s" inserted at the end; item 1: missing output (all deletions)
    per, per_item, d = phone_scores(refs, [["ð", "k", "æ", "t", "s"], []])
    assert (d["substitutions"], d["deletions"], d["insertions"]) == (0, 4, 1)
    assert per == pytest.approx(5 / 8) and per_item == pytest.approx([2 / 5, 1.0])
    with pytest.raises(ValueError, match="2 references but 1"):
        phone_scores(refs, [[]])


def test_word_errors_split_deletions_and_insertions():
    assert word_errors("The old man sat.", "the man sat down") == {
        "substitutions": 0, "deletions": 1, "insertions": 1, "ref_words": 4}
    assert word_errors("Dr. Smith left!", "doctor smith right") == {
        "substitutions": 1, "deletions": 0, "insertions": 0, "ref_words": 3}
    assert word_errors("one two three", "") == {"substitutions": 0, "deletions": 3, "insertions": 0, "ref_words": 3}


def test_duration_summary_on_known_lengths(tmp_path):
    recs = []
    for i, (gt_s, tts_s) in enumerate(((2.0, 1.0), (4.0, 4.0), (1.6, 2.4))):
        for name, sec in (("gt", gt_s), ("tts", tts_s)):
            sf.write(tmp_path / f"{name}{i}.wav", np.zeros(int(sec * 16000), np.float32), 16000)
        secs = {n: sf.info(str(tmp_path / f"{n}{i}.wav")).duration for n in ("gt", "tts")}
        recs.append({"ground_truth": {"seconds": secs["gt"]}, "tts": {"seconds": secs["tts"]}})
    recs.append({"ground_truth": {"seconds": 3.0}, "tts": {"missing": True}})      # no output: no ratio
    d = duration_summary(recs)
    assert [r.get("duration_ratio") for r in recs] == pytest.approx([0.5, 1.0, 1.5, None])
    assert d == pytest.approx({"n": 3, "median": 1.0, "min": 0.5, "max": 1.5, "median_untrimmed": 1.0})
    assert duration_summary([{"tts": {"seconds": 1.0}}]) == {}


def test_speech_span_trims_leading_and_trailing_pauses():
    from tts.evaluation.scoring import speech_seconds
    sr = 16000
    tone = 0.3 * np.sin(2 * np.pi * 200 * np.arange(int(1.5 * sr)) / sr)
    wav = np.concatenate([np.zeros(int(0.4 * sr)), tone, 1e-4 * np.ones(int(0.6 * sr))]).astype(np.float32)
    assert speech_seconds(wav, sr) == pytest.approx(1.5, abs=0.02)         # 0.4 s before, 0.6 s after: gone
    recs = [{"ground_truth": {"seconds": 2.5, "speech_seconds": 1.5}, "tts": {"seconds": 1.5, "speech_seconds": 1.5}}]
    d = duration_summary(recs)
    assert d["median"] == pytest.approx(1.0) and d["median_untrimmed"] == pytest.approx(0.6)


def _report(per: bool = True) -> EvalReport:
    p = (lambda x: x) if per else (lambda x: None)
    rows = {"ground_truth": RowScores("ground_truth", 4, 0, wer=0.5, per=p(0.30), sim=0.9),
            "resynthesis": RowScores("resynthesis", 4, 0, wer=0.2, per=p(0.35), sim=0.7),
            "gt_cb1_nar": RowScores("gt_cb1_nar", 4, 0, wer=0.4, per=p(0.45), sim=0.6),
            "tts": RowScores("tts", 4, 0, wer=1.0, per=p(0.50), sim=0.66,
                             wer_detail={"substitutions": 3, "deletions": 20, "insertions": 1, "ref_words": 30})}
    durations = {"n": 4, "median": 0.7, "min": 0.4, "max": 1.1}
    setting = {"n_items": 4, "n_speakers": 2, "n_q": 8, "asr": "pocketsphinx", "speaker_encoder": "resemblyzer",
               "aligner": "exp/aligner/model", "aligner_dev_per": 0.33, "frontend": "the NAR's config.json",
               "nar_n_q": 8}
    return EvalReport(rows=rows, sim_floor=0.55, targets=targets(rows, 0.55, durations), setting=setting,
                      items=[], seconds=1.0, durations=durations)


def test_targets_and_report_name_the_targets():
    from tts.evaluation.report import _markdown
    rep = _report()
    t = rep.targets
    assert t["wer"]["limit"] == pytest.approx(0.3) and not t["wer"]["met"]
    assert t["per"]["limit"] == pytest.approx(0.525) and t["per"]["met"]
    assert t["sim"]["limit"] == pytest.approx(0.65) and t["sim"]["met"]
    assert t["duration"]["tts"] == 0.7 and not t["duration"]["met"]
    md = _markdown(rep, [], [])
    for s in ("TTS WER <= 1.5 x resynthesis WER", "TTS PER <= 1.5 x resynthesis PER",
              "TTS SIM >= different-speaker floor + 0.1", "median duration ratio TTS / ground truth in 0.8-1.25",
              "ground-truth codebook 1 + NAR", "training speakers only", "median 0.70, range 0.40-1.10",
              "3 / 20 / 1", "same-speaker ceiling", "SI-SDR"):
        assert s in md, s
    header = next(line for line in md.splitlines() if line.startswith("| row"))
    assert "| PER |" in header
    floor_row = next(line for line in md.splitlines() if line.startswith("| different speaker"))
    assert floor_row.count("|") == header.count("|")
    # without a recognizer: no PER column and no PER target, not an error
    md = _markdown(_report(per=False), [], [])
    assert "PER" not in next(line for line in md.splitlines() if line.startswith("| row"))
    assert "per" not in _report(per=False).targets and "training speakers only" not in md


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    d = tmp_path_factory.mktemp("rec")
    out = []
    for i, (text, voice, pitch) in enumerate(zip(TEXTS, ("en-us+m1", "en-us+m1", "en-gb+f3", "en-gb+f3"),
                                                  (40, 40, 85, 85))):
        p = d / f"r{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-w", str(p), text], check=True,
                       capture_output=True)
        out.append(p)
    return out


def _tiny_recognizer(d: Path, frame_rate: float) -> Path:
    import torch
    from tts.align.features import FeatureConfig
    from tts.align.model import CTCRecognizer, RecognizerConfig
    from tts.align.recognizer import save_recognizer
    torch.manual_seed(0)
    model = CTCRecognizer(RecognizerConfig(channels=16, n_blocks=1, kernel_size=3)).eval()
    save_recognizer(model, FeatureConfig(sample_rate=16000, frame_rate=frame_rate), d,
                    training={"steps": 0, "final_valid": {"per": 0.9}, "train_manifest": "train.jsonl"})
    return d


class _OneWordASR:
    """Stands in for pocketsphinx (whose start-up alone takes 15 s): hears "the" in anything."""
    name, constrained = "one-word stub", False

    def transcribe(self, wav, sr):
        return "the"


@needs_espeak
def test_rows_with_per_nar_row_and_durations(recordings, tmp_path, one_thread, monkeypatch):
    """Two speakers, one item each: ground truth / resynthesis / GT codebook 1 + NAR / TTS on the same
    items, a PER on every row, TTS outputs of known length (half and all of the recording)."""
    import tts.evaluation.asr
    from codec.api import Codec
    from tests.tts.helpers_models import tiny_exp
    from tts.align.recognizer import edit_distance
    from tts.evaluate import main

    monkeypatch.setattr(tts.evaluation.asr, "load_asr", lambda *a, **k: _OneWordASR())
    exp = tiny_exp(tmp_path)
    codec = Codec.from_pretrained(exp / "codec" / "model")
    aligner = _tiny_recognizer(tmp_path / "aligner", codec.frame_rate)
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    rows, gt_sec = [], []
    for i, (ref, prompt, spk) in enumerate(((1, 0, "A"), (3, 2, "B"))):
        wav, sr = sf.read(recordings[ref], dtype="float32")
        keep = len(wav) // 2 if i == 0 else len(wav)
        sf.write(wavs / f"u{i}.wav", wav[:keep], sr)
        gt_sec.append((len(wav) / sr, keep / sr))
        rows.append({"id": f"u{i}", "speaker": spk, "text": TEXTS[ref], "ref_wav": str(recordings[ref]),
                     "prompt_wav": str(recordings[prompt]), "prompt_text": TEXTS[prompt],
                     "out_wav": str(wavs / f"u{i}.wav")})
    (tmp_path / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    train = [{"id": f"t{i}", "speaker": "T", "path": str(recordings[i]), "duration": sf.info(str(recordings[i])).duration}
             for i in (0, 2)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    out = tmp_path / "eval"
    monkeypatch.chdir(tmp_path)       # the folder the evaluation runs in (a recipe's): the report names paths from it
    assert main(["--list", str(tmp_path / "list.jsonl"), "--out", str(out), "--codec", str(exp / "codec" / "model"),
                 "--nar", str(exp / "nar" / "model"), "--aligner", str(aligner), "--no-dnsmos",
                 "--examples", "1", "--jobs", "1", "--train-manifest", str(tmp_path / "train.jsonl")]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert list(rep["rows"]) == ["ground_truth", "resynthesis", "gt_cb1_nar", "tts"]
    assert all(r["n"] == 2 and r["missing"] == 0 and r["per"] is not None for r in rep["rows"].values())
    for item in rep["items"]:
        ref = item["ref_phones"].split()
        assert ref                                     # the front end's pronounced phones of the text
        for row in rep["rows"]:
            rec = item[row]
            hyp = rec["phones"].split()
            assert rec["per"] == pytest.approx(edit_distance(ref, hyp) / len(ref))
            e = rec["wer_errors"]        # "the" for a sentence with one "the": all other words deleted
            assert e == {"substitutions": 0, "deletions": e["ref_words"] - 1, "insertions": 0,
                         "ref_words": len(item["text"].rstrip(".").split())}
            assert rec["wer"] == pytest.approx((e["ref_words"] - 1) / e["ref_words"])
        # the NAR row is the recording's own codebook 1: as long as the resynthesis of the recording
        nar_wav, sr = sf.read(item["gt_cb1_nar"]["wav"])
        assert sr == codec.sample_rate
        assert len(nar_wav) == len(sf.read(item["resynthesis"]["wav"])[0])
    ratios = [it["duration_ratio"] for it in rep["items"]]
    # the ratio of the speech spans (pauses trimmed), which each row's record carries
    assert ratios == pytest.approx([it["tts"]["speech_seconds"] / it["ground_truth"]["speech_seconds"]
                                    for it in rep["items"]], abs=1e-6)
    assert rep["durations"]["median_untrimmed"] == pytest.approx(np.median([t / g for g, t in gt_sec]), abs=1e-3)
    assert rep["durations"]["median"] == pytest.approx(np.median(ratios))
    assert set(rep["targets"]) == {"wer", "per", "sim", "voice", "duration", "pitch"}
    # pitch on every row, against the recording on the rows of its time axis; intervals; the floors
    for name, row in rep["rows"].items():
        assert row["pitch"]["n"] == 2 and set(row["ci"]) == {"wer", "per", "sim"}, name
        assert ("vs_recording" in row["pitch"]) == (name in ("resynthesis", "gt_cb1_nar")), name
    assert rep["rows"]["resynthesis"]["pitch"]["vs_recording"]["voiced_both"] > 0
    assert set(rep["floors"]) == {"different_speaker", "codec_different_speaker", "nearest_training_voice"}
    assert rep["floors"]["nearest_training_voice"]["n_training_speakers"] == 1
    assert (out / "pitch_spectrograms.png").stat().st_size > 5000
    assert rep["setting"]["aligner_dev_per"] == 0.9 and "NAR's config.json" in rep["setting"]["frontend"]
    md = (out / "report.md").read_text()
    assert rep["setting"]["aligner"] == "aligner" and str(tmp_path) not in md     # no machine path in the report
    assert "ground-truth codebook 1 + NAR" in md and "TTS PER <= 1.5 x resynthesis PER" in md
    assert (out / "examples" / "u0" / "gt_cb1_nar.wav").is_file()
    # an --aligner that does not exist is an error before any work
    assert main(["--list", str(tmp_path / "list.jsonl"), "--out", str(tmp_path / "e2"),
                 "--aligner", str(tmp_path / "nothing")]) == 2
