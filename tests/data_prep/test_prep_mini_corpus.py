from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.check import words
from data_prep.mini_corpus import build_corpus, replan, size_from_args
from data_prep.mini_plan import (ACCENTS_FILE, PEAK_LIMIT, SIZES, SUBSETS, TIMBRES, CorpusSize, cell_of, is_heldout_cell,
                                 plan_corpus)
from data_prep.mini_design import CELL_MARGIN, design_cell, design_cells, design_position, is_heldout_design_cell
from data_prep.mini_plan import VOICES_PER_FOLDER
from data_prep.mini_voice import _espeak, check_voices
from data_prep.sentences import handwritten, heldout_words


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted((root / "LibriTTS").rglob("*")) if p.is_file()}


def _speakers(root: Path, subset: str) -> set[str]:
    return {p.name for p in (root / "LibriTTS" / subset).iterdir() if p.is_dir()}


def test_layout(tiny_corpus):
    lib = tiny_corpus / "LibriTTS"
    wavs = sorted(lib.glob("*/*/*/*.wav"))
    size = SIZES["tiny"]
    n_expected = (size.train_speakers * size.train_utts + size.dev_speakers * size.dev_utts
                  + size.test_speakers * size.test_utts)
    assert len(wavs) == n_expected
    for wav in wavs:
        subset, spk, chap = wav.parts[-4:-1]
        assert subset in SUBSETS
        utt = wav.name[:-4]
        s, c, para, sent = utt.split("_")
        assert (s, c) == (spk, chap) and len(para) == len(sent) == 6
        info = sf.info(str(wav))
        assert info.samplerate == 24000 and info.channels == 1 and info.subtype == "PCM_16"
        assert 0.5 < info.duration < 15
        norm = wav.with_name(utt + ".normalized.txt").read_text()
        orig = wav.with_name(utt + ".original.txt").read_text()
        assert norm and orig and not any(ch.isdigit() for ch in norm)
        trans = (wav.parent / f"{spk}_{chap}.trans.tsv").read_text().splitlines()
        assert f"{utt}\t{orig}\t{norm}" in trans
    assert (lib / "speakers.tsv").read_text().startswith("READER\tGENDER\tSUBSET\tNAME\n")


def test_speaker_splits_are_disjoint(tiny_corpus):
    train, dev, test = (_speakers(tiny_corpus, s) for s in SUBSETS)
    size = SIZES["tiny"]
    assert (len(train), len(dev), len(test)) == (size.train_speakers, size.dev_speakers, size.test_speakers)
    assert not train & test and not train & dev and not dev & test  # dev: an unseen-speaker validation split


def test_designed_voices_hold_out_cells_of_the_design_space():
    speakers, _ = plan_corpus(SIZES["default"], seed=0, voice_dir="/x")
    by_split = {sp: [s for s in speakers if s.split == sp] for sp in ("train", "dev", "test")}
    assert [len(by_split[k]) for k in ("train", "dev", "test")] == [460, 8, 8]
    assert SIZES["default"].train_speakers * SIZES["default"].train_utts == \
        SIZES["stock"].train_speakers * SIZES["stock"].train_utts          # the same training hours
    for s in speakers:
        assert design_cell(s.tract, s.pitch_hz) == s.cell and is_heldout_design_cell(s.cell) == (s.split != "train")
        pitch_line = next(ln for ln in s.variant_file().splitlines() if ln.startswith("pitch "))
        assert "formant 5" in s.variant_file() and abs(int(pitch_line.split()[1]) - s.pitch_hz) <= 1
        assert s.espeak_args()[0].startswith("--path=/x/")
    assert len({s.design for s in speakers}) == len({s.variant for s in speakers}) == len(speakers)
    assert {s.gender for s in speakers} == {"M", "F"}
    assert max(Counter(s.voice_dir for s in speakers).values()) <= VOICES_PER_FOLDER   # espeak-ng lists <= 349
    pos = {s.id: design_position(s.tract, s.pitch_hz) for s in speakers}
    for s in by_split["dev"] + by_split["test"]:
        nearest = min(max(abs(pos[s.id][0] - pos[t.id][0]), abs(pos[s.id][1] - pos[t.id][1])) for t in by_split["train"])
        assert nearest >= 2 * CELL_MARGIN - 1e-3
    # the training voices cover the space: every training cell is used
    assert {s.cell for s in by_split["train"]} == set(design_cells(heldout=False))
    with pytest.raises(ValueError, match="espeak-ng folder"):
        plan_corpus(SIZES["default"], seed=0)[0][0].espeak_args()


def test_designed_voices_are_read_from_the_corpus_folder(tiny_corpus):
    """The tiny corpus's voices are designed: espeak-ng reads them from <root>/espeak-ng-voices, they differ
    from each other and from the plain voice; without the folder espeak-ng would silently use the plain voice."""
    meta = json.loads((tiny_corpus / "LibriTTS" / "mini_corpus.json").read_text(encoding="utf-8"))
    assert meta["size"]["voices"] == "designed" and all(s["design"] for s in meta["speakers"])
    folder = tiny_corpus / "espeak-ng-voices" / "0"
    assert (folder / "phondata").exists() and len(list((folder / "voices" / "!v").iterdir())) == len(meta["speakers"])
    name = meta["speakers"][0]["variant"]
    probe = "A quick test."
    a = _espeak([f"--path={folder}", "-v", f"en-us+{name}"], probe)
    b = _espeak([f"--path={folder}", "-v", f"en-us+{meta['speakers'][1]['variant']}"], probe)
    plain = _espeak(["-v", "en-us"], probe)
    speakers, jobs = replan(tiny_corpus / "LibriTTS" / "mini_corpus.json")      # as tts.align.boundaries re-plans
    assert _espeak(speakers[0].espeak_args()[:3], probe) == a and len(jobs) == len(list(tiny_corpus.glob("LibriTTS/*/*/*/*.wav")))
    assert a != b and a != plain
    assert _espeak(["-v", f"en-us+{name}"], probe) == plain      # espeak-ng's own folder: silently the plain voice


def test_heldout_voices_use_unseen_timbres_and_cells():
    speakers, _ = plan_corpus(SIZES["stock"], seed=0)
    by_split = {sp: [s for s in speakers if s.split == sp] for sp in ("train", "dev", "test")}
    assert [len(by_split[k]) for k in ("train", "dev", "test")] == [40, 8, 8]
    train_timbres = {s.variant for s in by_split["train"]}
    for sp in ("dev", "test"):
        assert not {s.variant for s in by_split[sp]} & train_timbres
        assert all(is_heldout_cell(s.cell) for s in by_split[sp])
    assert not {s.variant for s in by_split["dev"]} & {s.variant for s in by_split["test"]}
    assert not any(is_heldout_cell(s.cell) for s in by_split["train"])
    for s in speakers:  # the recorded cell is where the voice really is
        assert cell_of(s.gender, s.pitch, s.speed) == s.cell
    assert len({(s.variant, s.pitch, s.speed) for s in speakers}) == len(speakers)
    assert {s.gender for s in speakers} == {"M", "F"} and {s.voice for s in speakers} == {"en-us"}
    # the timbre table itself keeps the subsets apart
    flat = {sp: {v for g in TIMBRES[sp].values() for v in g} for sp in TIMBRES}
    assert not flat["train"] & flat["test"] and not flat["train"] & flat["dev"] and not flat["dev"] & flat["test"]


def test_heldout_text_never_occurs_in_training():
    _, jobs = plan_corpus(SIZES["default"], seed=0)
    text = {sp: [j for j in jobs if j.subset == sub] for sp, sub in zip(("train", "dev", "test"), SUBSETS)}
    train_words = {w for j in text["train"] for w in words(j.text_norm)}
    train_sents = {j.text_orig for j in text["train"]}
    assert len(text["train"]) + len(text["dev"]) + len(text["test"]) == 2000
    for sp in ("dev", "test"):
        assert not set(heldout_words(sp)) & train_words
        used = {j.text_orig for j in text[sp]}
        assert not used & train_sents
        hand = set(handwritten(sp)) & used
        assert len(hand) >= 0.25 * len(text[sp])  # a real share of hand-written sentences
        assert len({w for j in text[sp] for w in words(j.text_norm)} & set(heldout_words(sp))) > 0.5 * len(
            heldout_words(sp))
    texts = [j.text_norm for j in jobs]
    assert len(set(texts)) > 0.9 * len(texts)
    assert len(train_words) > 600
    assert any("—" in j.text_norm for j in text["train"]) and any("…" in j.text_norm for j in text["train"])


def test_audio_has_random_leading_silence_and_no_clipping(tiny_corpus):
    from data_prep.check_audio import _silences

    res = [_silences(str(w)) for w in sorted((tiny_corpus / "LibriTTS").glob("*/*/*/*.wav"))]
    leads = [r[0] for r in res]
    assert min(leads) >= 0.09 and np.std(leads) > 0.03  # espeak starts at once: the corpus adds the silence
    assert max(r[2] for r in res) < PEAK_LIMIT + 1e-3


def test_settings_recorded(tiny_corpus):
    meta = json.loads((tiny_corpus / "LibriTTS" / "mini_corpus.json").read_text(encoding="utf-8"))
    assert meta["espeak_ng_version"][:1].isdigit() and meta["corpus_version"]
    assert meta["sentences"]["test_only_words"] == heldout_words("test")
    assert meta["sentences"]["handwritten_test"] == list(handwritten("test"))
    assert {s["split"] for s in meta["speakers"]} == {"train", "dev", "test"}


def test_check_voices_detects_substitution_and_copies():
    check_voices(["en-us+m2", "en-us+f3", "en+m2"])  # fine
    with pytest.raises(RuntimeError, match="substitutes"):
        check_voices(["en-us+m2", "en-us+no_such_variant"])
    with pytest.raises(RuntimeError, match="en-gb\\+m2"):  # espeak-ng 1.51 ignores en-gb's variants
        check_voices(["en-gb+m2"])
    with pytest.raises(RuntimeError, match="klatt"):
        check_voices(["en-us+klatt", "en-us+klatt6"])  # espeak-ng 1.51: two names, one voice


def test_per_speaker_accents_are_written_for_the_phonemes_stage(tmp_path):
    from data_prep.mini_corpus import _write_indexes
    from data_prep.phonemes import read_speaker_languages

    speakers, jobs = plan_corpus(SIZES["tiny"], seed=3, accents="per-speaker")
    _write_indexes(tmp_path, speakers, jobs, "per-speaker")
    langs = read_speaker_languages(tmp_path / "LibriTTS" / ACCENTS_FILE)
    assert langs == {s.id: s.voice for s in speakers}
    many, _ = plan_corpus(SIZES["stock"], seed=0, accents="per-speaker")
    assert len({s.voice for s in many}) >= 6
    check_voices([s.espeak_voice() for s in many])  # no accent/variant pair espeak-ng would substitute


def test_deterministic_and_resumable(tiny_corpus, tmp_path):
    stats = build_corpus(tmp_path / "a", SIZES["tiny"], seed=0, jobs=2)
    assert _digest(tmp_path / "a") == _digest(tiny_corpus)  # same seed, identical files
    victim = next((tmp_path / "a" / "LibriTTS" / "test-clean").glob("*/*/*.wav"))
    victim.unlink()
    again = build_corpus(tmp_path / "a", SIZES["tiny"], seed=0, jobs=2)
    assert again.synthesized == 1 and again.utterances == stats.utterances
    assert _digest(tmp_path / "a") == _digest(tiny_corpus)
    small = CorpusSize(2, 1, 1, 2, 1, 1, train_chapters=1)
    build_corpus(tmp_path / "b", small, seed=1, jobs=1)
    build_corpus(tmp_path / "c", small, seed=2, jobs=1)
    assert _digest(tmp_path / "b") != _digest(tmp_path / "c")
    with pytest.raises(RuntimeError, match="other settings"):
        build_corpus(tmp_path / "c", small, seed=1, jobs=1)


def test_size_overrides():
    s = size_from_args("default", speakers=14, hours=1.0)
    assert s.train_speakers + s.test_speakers + s.dev_speakers == 14 and s.test_speakers >= 1 and s.dev_speakers >= 1
    assert s.train_speakers * s.train_utts * 5.0 >= 3600
