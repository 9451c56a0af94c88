from __future__ import annotations

import logging

import pytest

from data_prep.libritts import read_manifest
from data_prep.espeak import phonemize, tokenize_ipa
from data_prep.phonemes import prepare_phonemes
from data_prep.symbols import PAD, SPECIALS, WORD_SEP, SymbolTable, UnknownSymbolError
from core.io import read_jsonl


def test_specials_and_file_round_trip(tmp_path):
    table = SymbolTable()
    assert table.symbols[: len(SPECIALS)] == list(SPECIALS) and table.pad_id == 0
    assert table.encode([PAD]) == [0]
    table.save(tmp_path / "tokens.txt")
    lines = (tmp_path / "tokens.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "<pad> 0" and len(lines) == len(table)
    loaded = SymbolTable.load(tmp_path / "tokens.txt")
    assert loaded.symbols == table.symbols


def test_encode_decode_round_trip_on_real_sentences():
    table = SymbolTable()
    sentences = ["Hello, world!", "The quick brown fox jumps over the lazy dog?",
                 "She said: \"Bring the lantern; the cellar is dark.\""]
    for text, tokens in zip(sentences, phonemize(sentences)):
        ids = table.encode(tokens, context=text)  # the built-in inventory covers real English
        assert table.decode(ids) == tokens


def test_real_sentences_are_tokenized_sensibly():
    hello, fox, thing = phonemize(["Hello, world!", "The quick brown fox jumps over the lazy dog.", "thing"])
    assert hello[0] == "h" and hello[-1] == "!" and "," in hello
    assert hello.count(WORD_SEP) == 1 and WORD_SEP not in (hello[0], hello[-1])
    assert fox.count(WORD_SEP) == 8  # nine words
    assert "ˈ" in fox  # stress marks are tokens
    assert all(len(t) <= 4 for t in fox)  # phones, not whole words
    assert thing[0] == "θ" and "ŋ" in thing
    assert phonemize(["cat"]) != phonemize(["dog"])


def test_unknown_symbol_error_names_symbol_and_sentence():
    table = SymbolTable()
    with pytest.raises(UnknownSymbolError) as exc:
        table.encode(["h", "☃", "l"], context="h snowman l")
    assert "☃" in str(exc.value) and "h snowman l" in str(exc.value)
    assert isinstance(exc.value, ValueError) and not isinstance(exc.value, KeyError)


def test_unknown_symbol_maps_to_unk_with_warning(caplog):
    table = SymbolTable()
    with caplog.at_level(logging.WARNING, logger="data_prep.symbols"):
        ids = table.encode(["h", "☃"], on_unknown="unk")
    assert ids == [table.encode(["h"])[0], table.unk_id]
    assert "☃" in caplog.text


def test_tokenize_ipa_splits_stress_and_punctuation():
    assert tokenize_ipa("h|ə|l|ˈoʊ, w|ˈɜː|l|d!") == ["h", "ə", "l", "ˈ", "oʊ", ",", "_", "w", "ˈ", "ɜː", "l", "d", "!"]
    assert tokenize_ipa("") == []
    # phonemizer's strip=False form: every phone ends with '|', punctuation comes after the last one
    assert tokenize_ipa("h|ˈaɪ|: ") == ["h", "ˈ", "aɪ", ":"]


def test_scottish_length_mark_is_not_the_colon_token():
    # espeak's Scottish voice writes long vowels with an ASCII ':' ("bath" -> b ˈa: θ), which used to
    # come out as the ':' punctuation token in mid-word
    (bath,), (spa_colon,) = phonemize(["bath"], "en-gb-scotland"), phonemize(["spa: yes"], "en-gb-scotland")
    assert ":" not in bath and "aː" in bath
    assert spa_colon.count(":") == 1 and "aː" in spa_colon  # the real colon stays punctuation
    assert spa_colon.index(":") == spa_colon.index(WORD_SEP) - 1


def test_add_is_deterministic():
    a, b = SymbolTable(), SymbolTable()
    assert a.add(["zz", "yy", "h"]) == ["yy", "zz"]
    b.add(["yy", "zz"])
    assert a.symbols == b.symbols


def test_prepare_phonemes_on_tiny_corpus(tiny_manifests, tmp_path):
    subsets = ["train-clean-100", "dev-clean"]
    fe = prepare_phonemes(tiny_manifests, tmp_path, subsets, jobs=2)
    table = fe.symbols
    for subset in subsets:
        manifest = read_manifest(tiny_manifests / f"{subset}.jsonl")
        rows = read_jsonl(tmp_path / f"{subset}.jsonl")
        assert [r["id"] for r in rows] == [m["id"] for m in manifest]
        for r in rows:
            tokens = r["phonemes"].split(" ")
            assert tokens and all(tokens)
            table.encode(tokens)  # every symbol is in the written table
    assert SymbolTable.load(tmp_path / "tokens.txt").symbols == table.symbols
    # second run: outputs complete -> not rewritten
    mtime = (tmp_path / "dev-clean.jsonl").stat().st_mtime_ns
    prepare_phonemes(tiny_manifests, tmp_path, subsets, jobs=1)
    assert (tmp_path / "dev-clean.jsonl").stat().st_mtime_ns == mtime


def test_parallel_matches_serial():
    texts = [f"Sentence number {i} is here." for i in range(12)]
    assert phonemize(texts, jobs=2, batch_size=4) == phonemize(texts, jobs=1)


def test_the_bpe_option_is_gone():
    from data_prep.phonemes import main
    with pytest.raises(SystemExit):
        main(["--manifests", "m", "--out", "o", "--subsets", "x", "--bpe-vocab", "100"])
