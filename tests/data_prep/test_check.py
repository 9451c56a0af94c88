from __future__ import annotations

import json

from data_prep.check import check_corpus, format_report, main, ngrams, words
from core.io import read_jsonl, write_jsonl
from data_prep.mini_design import CELL_MARGIN
from data_prep.phonemes import prepare_phonemes


def test_words_and_ngrams():
    assert words("Hello, World! It's a well-known tale.") == ["hello", "world", "it's", "a", "well", "known", "tale"]
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]


def test_clean_mini_corpus_has_no_leaks(tiny_manifests, tmp_path):
    data = tmp_path / "data"
    (data / "manifests").mkdir(parents=True)
    for f in tiny_manifests.glob("*.jsonl"):
        (data / "manifests" / f.name).write_bytes(f.read_bytes())
    prepare_phonemes(data / "manifests", data / "phonemes", ["train-clean-100", "dev-clean", "test-clean"])
    rep = check_corpus(data, audio=True)
    for name in ("dev", "test"):
        s = rep.splits[name]
        assert s.speakers_in_train == 0 and s.timbres_in_train == [] and s.speakers_with_train_timbre == 0
        assert s.cells_in_train == 0 and s.handwritten_in_train == 0 and s.heldout_words_in_train == 0
        assert s.sentences_in_train == 0 and s.heldout_words_listed > 0
        assert all(v > 0 for v in s.f0_median_hz.values())
        # designed voices: every held-out voice is at least 2 cell margins from every training voice
        assert len(s.design_nearest_train_bands) == s.speakers
        assert min(s.design_nearest_train_bands.values()) >= 2 * CELL_MARGIN - 1e-3
    assert rep.symbols["in_train"] > 20 and rep.symbols["unk_tokens"] == 0
    assert rep.audio["lead_silence_ms_median"] >= 90 and rep.audio["peak_limited_frac"] == 0
    assert rep.corpus["espeak_ng_version"]
    assert "| speakers also in training | 0 | 0 |" in format_report(rep)


def test_leaky_split_is_reported(tiny_manifests, tmp_path):
    """A test set that copies training utterances must show up in every text and speaker statistic."""
    data = tmp_path / "data"
    train = read_jsonl(tiny_manifests / "train-clean-100.jsonl")
    write_jsonl(data / "manifests" / "train-clean-100.jsonl", train)
    write_jsonl(data / "manifests" / "test-clean.jsonl", train[:5])
    main(["--data-dir", str(data), "--no-audio", "--out", str(tmp_path / "out.json")])
    rep = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    t = rep["splits"]["test"]
    assert t["speakers_in_train"] == t["speakers"] > 0 and t["sentences_in_train"] == 5
    assert t["word_types_unseen"] == 0 and t["ngrams_in_train_frac"]["4"] == 1.0
    assert t["timbres_in_train"] == t["timbres"] and t["speakers_with_train_timbre"] == t["speakers"]
    assert set(t["design_nearest_train_bands"].values()) == {0.0}        # the same voices: distance 0
    assert (tmp_path / "out.md").read_text(encoding="utf-8").startswith("# Leakage check")
