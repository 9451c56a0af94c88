from __future__ import annotations

import json
import logging
import random

import pytest

from core.io import read_jsonl, write_jsonl
from data_prep.frontend import FrontendMismatch, FrontendSettings, TextFrontend
from data_prep.phonemes import prepare_phonemes
from data_prep.symbols import SPECIALS, SYMBOLS, SYMBOLS_VERSION, UNK, SymbolTable

RAW = ["Dr. Smith paid $3.50 on May 2nd, 1999 \u2014 20% off!", "\u201cHello,\u201d she said\u2026 it's 10:30.",
       "Note: the bath is warm.", "He walked 6 ft. on the 3rd day."]


@pytest.fixture(scope="module")
def fe() -> TextFrontend:
    return TextFrontend.default()


def test_specials_keep_their_ids_and_table_is_fixed(fe):
    assert fe.symbols.symbols[:5] == ["<pad>", "<bos>", "<eos>", "<unk>", "_"] == list(SPECIALS)
    assert tuple(fe.symbols.symbols) == SYMBOLS and fe.settings.symbols_version == SYMBOLS_VERSION
    # ids never depend on the corpus: two front ends agree whatever text they saw before
    other = TextFrontend.default()
    other.phonemize(["Zebras quietly jump."])
    assert other.symbols.symbols == fe.symbols.symbols and other.fingerprint() == fe.fingerprint()


def test_save_load_round_trip(fe, tmp_path):
    fe.save(tmp_path)
    assert (tmp_path / "tokens.txt").read_text(encoding="utf-8").splitlines()[0] == "<pad> 0"
    meta = json.loads((tmp_path / "frontend.json").read_text(encoding="utf-8"))
    assert meta["settings"]["language"] == "en-us" and meta["fingerprint"] == fe.fingerprint()
    assert meta["settings"]["espeak_ng_version"] not in ("", "unavailable")
    loaded = TextFrontend.load(tmp_path)
    assert loaded.settings == fe.settings and loaded.fingerprint() == fe.fingerprint()
    loaded.check_compatible(fe, "the saved front end")  # no error


def test_edited_files_are_detected(fe, tmp_path):
    fe.save(tmp_path)
    meta = json.loads((tmp_path / "frontend.json").read_text(encoding="utf-8"))
    meta["fingerprint"] = "0" * 16
    (tmp_path / "frontend.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValueError, match="fingerprint"):
        TextFrontend.load(tmp_path)
    fe.save(tmp_path)
    table = SymbolTable(list(SYMBOLS) + ["zz"])
    table.save(tmp_path / "tokens.txt")
    with pytest.raises(ValueError, match="edited"):
        TextFrontend.load(tmp_path)


def test_dir_without_settings_is_a_one_line_error(tmp_path):
    SymbolTable().save(tmp_path / "tokens.txt")
    with pytest.raises(FileNotFoundError, match="frontend.json not found.*phonemes stage") as e:
        TextFrontend.load(tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="tokens.txt"):
        TextFrontend.load(tmp_path / "nowhere")


def test_mismatch_names_each_setting(fe):
    gb = TextFrontend.default("en-gb")
    with pytest.raises(FrontendMismatch) as exc:
        fe.check_compatible(gb, "model exp/ar/model")
    assert "language: 'en-gb' != 'en-us'" in str(exc.value) and "exp/ar/model" in str(exc.value)
    d = {**fe.to_dict(), "with_stress": False, "normalizer_version": "0"}
    with pytest.raises(FrontendMismatch) as exc:
        fe.check_compatible(d, "dump")
    assert "with_stress" in str(exc.value) and "normalizer_version" in str(exc.value)
    assert "language" not in str(exc.value)
    with pytest.raises(FrontendMismatch, match="fingerprint"):
        fe.check_compatible({**fe.to_dict(), "fingerprint": "deadbeef"}, "dump")
    fe.check_compatible(fe.to_dict(), "dump")  # the dump header form
    fe.check_compatible({"settings": fe.settings.to_dict(), "fingerprint": fe.fingerprint()}, "frontend.json")


def test_from_record_rebuilds_or_refuses(fe):
    gb = TextFrontend.default("en-gb")
    again = TextFrontend.from_record(gb.to_dict(), "model")
    assert again.settings.language == "en-gb" and again.fingerprint() == gb.fingerprint()
    v2 = TextFrontend.default(normalizer_version="2")
    old = TextFrontend.from_record(v2.to_dict(), "old model")
    assert old.fingerprint() == v2.fingerprint() and old.settings.normalizer_version == "2"  # as it was trained
    with pytest.raises(FrontendMismatch, match="symbols_version"):
        TextFrontend.from_record({**fe.to_dict(), "symbols_version": "1"}, "old model")


def test_tool_version_difference_only_warns(fe, caplog):
    d = {**fe.settings.to_dict(), "espeak_ng_version": "0.99"}
    with caplog.at_level(logging.WARNING, logger="data_prep.frontend"):
        fe.check_compatible(d, "old model")
    assert "0.99" in caplog.text


def test_settings_dict_round_trip():
    s = FrontendSettings(language="en-gb", with_stress=False, espeak_ng_version="1.51")
    assert FrontendSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown front-end setting"):
        FrontendSettings.from_dict({"langauge": "en-us"})


def test_unknown_symbols_become_unk_the_same_way(fe, caplog):
    with caplog.at_level(logging.WARNING):
        ids = fe.encode(["h", "☃"])
    assert ids == [fe.symbols.encode(["h"])[0], fe.symbols.unk_id] and "☃" in caplog.text
    assert fe.tokens_to_ids("h ☃") == ids


def test_text_to_ids_normalises_first(fe):
    assert fe.text_to_ids("Dr. Smith has 2 cats.") == fe.text_to_ids("Doctor Smith has two cats.")
    ids = fe.text_to_ids("Hello, world!")
    assert all(0 <= i < len(fe.symbols) for i in ids) and fe.symbols.unk_id not in ids
    assert fe.text_to_ids("the bath", language="en-gb") != fe.text_to_ids("the bath")  # the accent is an option
    with pytest.raises(ValueError, match="unknown accent 'fr-fr'"):
        fe.text_to_ids("bonjour", language="fr-fr")
    with pytest.raises(ValueError, match="unknown accent"):
        TextFrontend.default("klingon")


def test_training_and_inference_paths_agree(tmp_path, fe):
    """The phonemes stage (training) and text_to_ids (inference) must give the same ids for a text.

    Fails if either path changes alone: e.g. the stage skipping normalisation, a different tokenizer,
    options or symbol table on one side.
    """
    rng = random.Random(0)
    manifests = tmp_path / "manifests"
    rows = [{"id": f"u{i}", "path": "/x.wav", "duration": 1.0, "sr": 24000, "speaker": "1", "chapter": "1",
             "text_norm": t, "text_orig": t} for i, t in enumerate(RAW + [rng.choice(RAW).upper()])]
    write_jsonl(manifests / "test-clean.jsonl", rows)
    prepare_phonemes(manifests, tmp_path / "phonemes", ["test-clean"], jobs=1)
    loaded = TextFrontend.load(tmp_path / "phonemes")  # what training reads
    fe.check_compatible(loaded, "the phonemes stage")
    for row, out in zip(rows, read_jsonl(tmp_path / "phonemes" / "test-clean.jsonl")):
        assert out["id"] == row["id"]
        assert loaded.tokens_to_ids(out["phonemes"]) == fe.text_to_ids(row["text_norm"]), row["text_norm"]
        assert UNK not in out["phonemes"].split()


def test_stage_redoes_files_of_another_front_end(tmp_path):
    manifests = tmp_path / "manifests"
    write_jsonl(manifests / "dev-clean.jsonl", [{"id": "a", "path": "/x.wav", "duration": 1.0, "sr": 24000,
                                                 "speaker": "1", "chapter": "1", "text_norm": "the bath",
                                                 "text_orig": "the bath"}])
    out = tmp_path / "ph"
    prepare_phonemes(manifests, out, ["dev-clean"])
    us = read_jsonl(out / "dev-clean.jsonl")[0]["phonemes"]
    prepare_phonemes(manifests, out, ["dev-clean"], language="en-gb")  # same ids, other accent: redone
    assert read_jsonl(out / "dev-clean.jsonl")[0]["phonemes"] != us
    assert TextFrontend.load(out).settings.language == "en-gb"
    # per-speaker accents are recorded per row and checked on resume
    prepare_phonemes(manifests, out, ["dev-clean"], speaker_languages={"1": "en-029"})
    row = read_jsonl(out / "dev-clean.jsonl")[0]
    assert row["language"] == "en-029" and row["phonemes"] != us
