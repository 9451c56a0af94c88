from __future__ import annotations

import hashlib
from pathlib import Path

import soundfile as sf

from data_prep.mini_corpus import SIZES, SUBSETS, CorpusSize, build_corpus, plan_corpus, size_from_args


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


def test_speaker_splits(tiny_corpus):
    train, dev, test = (_speakers(tiny_corpus, s) for s in SUBSETS)
    size = SIZES["tiny"]
    assert len(train) == size.train_speakers and len(test) == size.test_speakers
    assert not train & test  # test speakers are unseen in training
    assert dev <= train  # dev: seen speakers, unseen sentences


def test_speakers_are_distinct_voices():
    speakers, jobs = plan_corpus(SIZES["default"], seed=0)
    assert len(speakers) >= 40
    assert len({(s.voice, s.variant, s.pitch, s.speed) for s in speakers}) == len(speakers)
    assert len({s.voice for s in speakers}) >= 6 and {s.gender for s in speakers} == {"M", "F"}
    assert len({j.utt_id for j in jobs}) == len(jobs)
    texts = [j.text_norm for j in jobs]
    assert len(set(texts)) > 0.9 * len(texts)
    assert len({w for t in texts for w in t.lower().split()}) > 800  # a large vocabulary


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


def test_size_overrides():
    s = size_from_args("default", speakers=12, hours=1.0)
    assert s.train_speakers + s.test_speakers == 12 and s.test_speakers >= 1
    assert s.train_speakers * s.train_utts * 5.0 >= 3600


def test_refuses_to_mix_corpora(tmp_path):
    import pytest

    small = CorpusSize(2, 1, 1, 1, 1, 1, train_chapters=1)
    build_corpus(tmp_path, small, seed=3, jobs=1)
    with pytest.raises(RuntimeError, match="other settings"):
        build_corpus(tmp_path, small, seed=4, jobs=1)
