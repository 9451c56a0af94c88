"""Manifests and the zero-shot list store recipe-relative paths and are read from anywhere, also
after the checkout moved."""
import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from core.io import path_for_file, path_from_file
from data_prep.libritts import prepare_manifests, read_manifest


def _corpus(recipe: Path) -> None:
    d = recipe / "data" / "mini" / "LibriTTS" / "dev-clean" / "19" / "198"
    d.mkdir(parents=True)
    for i in range(2):
        uid = f"19_198_000000_00000{i}"
        sf.write(d / f"{uid}.wav", np.zeros(8000, np.float32), 16000)
        (d / f"{uid}.normalized.txt").write_text("hello there")
        (d / f"{uid}.original.txt").write_text("Hello there.")


def test_manifest_paths_are_recipe_relative_and_survive_a_move(tmp_path, monkeypatch):
    recipe = tmp_path / "a" / "egs" / "libritts"
    _corpus(recipe)
    monkeypatch.chdir(recipe)
    prepare_manifests("data/mini", "data/manifests", ["dev-clean"], jobs=1)
    raw = [json.loads(x) for x in (recipe / "data/manifests/dev-clean.jsonl").read_text().splitlines()]
    assert raw[0]["path"] == "data/mini/LibriTTS/dev-clean/19/198/19_198_000000_000000.wav"
    moved = tmp_path / "b"
    shutil.move(str(tmp_path / "a"), str(moved))
    monkeypatch.chdir(tmp_path)                       # another folder, and the old tree is gone
    rows = read_manifest(moved / "egs/libritts/data/manifests/dev-clean.jsonl")
    assert rows[0]["path"] == str(moved / "egs/libritts/data/mini/LibriTTS/dev-clean/19/198/19_198_000000_000000.wav")
    assert all(Path(r["path"]).is_file() for r in rows)


def test_path_helpers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp" / "synth" / "prompts").mkdir(parents=True)
    (tmp_path / "exp" / "synth" / "prompts" / "p.wav").write_bytes(b"x")
    assert path_for_file(tmp_path / "exp/synth/prompts/p.wav", "exp/synth") == "exp/synth/prompts/p.wav"
    assert path_for_file("/elsewhere/x.wav", "exp/synth") == "/elsewhere/x.wav"        # outside: absolute
    monkeypatch.chdir("/")
    assert path_from_file("exp/synth/prompts/p.wav", tmp_path / "exp" / "synth") == str(
        tmp_path / "exp/synth/prompts/p.wav")
    assert path_from_file("/abs/x.wav", tmp_path) == "/abs/x.wav"
