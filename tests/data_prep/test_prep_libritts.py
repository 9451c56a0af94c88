from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from data_prep.libritts import MANIFEST_FIELDS, main, prepare_manifests, read_manifest

SUBSET = "train-clean-100"


@pytest.fixture()
def damaged_corpus(tiny_corpus, tmp_path):
    """A copy of the tiny corpus's training subset with three bad files planted."""
    src = tiny_corpus / "LibriTTS" / SUBSET
    dst = tmp_path / "corpus" / "LibriTTS" / SUBSET
    shutil.copytree(src, dst)
    good = sorted(p.name[:-4] for p in dst.glob("*/*/*.wav"))
    chapter = next(dst.glob("*/*"))
    spk, chap = chapter.parent.name, chapter.name
    bad = {
        f"{spk}_{chap}_900000_000000": "corrupt",
        f"{spk}_{chap}_900000_000001": "empty",
        f"{spk}_{chap}_900000_000002": "no transcript",
    }
    corrupt, empty, notext = (chapter / f"{u}.wav" for u in bad)
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00garbage that is not a wav file" * 20)
    sf.write(str(empty), np.zeros(0, dtype=np.float32), 24000, subtype="PCM_16")
    sf.write(str(notext), np.zeros(2400, dtype=np.float32), 24000, subtype="PCM_16")
    for wav in (corrupt, empty):
        for ext in (".normalized.txt", ".original.txt"):
            wav.with_name(wav.name[:-4] + ext).write_text("some text")
    return tmp_path / "corpus", good, bad


def test_bad_files_are_reported_and_nothing_else_is_lost(damaged_corpus, tmp_path):
    corpus, good, bad = damaged_corpus
    out = tmp_path / "manifests"
    stats = prepare_manifests(corpus, out, [SUBSET], jobs=2)
    rows = read_manifest(out / f"{SUBSET}.jsonl")
    assert [r["id"] for r in rows] == good  # every good utterance, sorted by id
    skipped = {r["id"]: r["reason"] for r in map(json.loads, (out / f"{SUBSET}.skipped.jsonl").read_text().splitlines())}
    assert set(skipped) == set(bad)
    by_kind = {kind: skipped[u] for u, kind in bad.items()}
    assert "unreadable" in by_kind["corrupt"]
    assert "empty" in by_kind["empty"]
    assert "transcript" in by_kind["no transcript"]
    assert stats[SUBSET].kept == len(good) and stats[SUBSET].skipped == 3


def test_manifest_fields(tiny_manifests, tiny_corpus):
    rows = read_manifest(tiny_manifests / f"{SUBSET}.jsonl")
    assert rows and all(tuple(r) == MANIFEST_FIELDS for r in rows)
    for r in rows:
        info = sf.info(r["path"])
        assert r["path"].startswith("/") and r["sr"] == info.samplerate == 24000
        assert r["duration"] == pytest.approx(info.frames / info.samplerate, abs=1e-3)
        assert r["id"].startswith(f"{r['speaker']}_{r['chapter']}_")
        base = r["path"][: -len(".wav")]
        assert r["text_norm"] == open(base + ".normalized.txt").read().strip()
        assert r["text_orig"] == open(base + ".original.txt").read().strip()
        assert not any(ch.isdigit() for ch in r["text_norm"])


def test_duration_filter_and_cli(tiny_corpus, tiny_manifests, tmp_path):
    rows = read_manifest(tiny_manifests / f"{SUBSET}.jsonl")
    cut = sorted(r["duration"] for r in rows)[len(rows) // 2]
    main(["--corpus-dir", str(tiny_corpus), "--out", str(tmp_path), "--subsets", SUBSET,
          "--min-duration", str(cut), "--jobs", "2"])
    kept = read_manifest(tmp_path / f"{SUBSET}.jsonl")
    assert kept and all(r["duration"] >= cut for r in kept)
    skipped = (tmp_path / f"{SUBSET}.skipped.jsonl").read_text().splitlines()
    assert len(kept) + len(skipped) == len(rows)
    assert all("too short" in json.loads(s)["reason"] for s in skipped)


def test_read_manifest_rejects_bad_rows(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"id": "a"}\n')
    with pytest.raises(ValueError, match="lacks fields"):
        read_manifest(tmp_path / "m.jsonl")


def test_missing_subset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        prepare_manifests(tmp_path, tmp_path / "out", ["nope"])
