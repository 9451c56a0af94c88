"""tts/checkpoint.py: saved models of earlier versions still load; a front end must be the versioned one."""
from __future__ import annotations

import json
import logging

import pytest

from core.config import to_dict
from tts.checkpoint import check_frontend, export_tts_model, load_tts_model, read_record
from tts.config import ModelConfig, TTSConfig



def _tiny_model_dir(tmp_path):
    from tts.build import build_model
    cfg = TTSConfig(model=ModelConfig(n_layers=1, d_model=16, n_heads=2, vocab_size=20, codebook_size=8, n_q=2))
    record = {**to_dict(cfg), "part": "ar", "codec_sha256": "x", "codec": {}, "frontend": {}}
    return export_tts_model(build_model(cfg.model, "ar"), record, tmp_path / "ar")


def test_a_model_saved_with_removed_and_renamed_keys_loads(tmp_path, caplog):
    d = _tiny_model_dir(tmp_path)
    old = json.loads((d / "config.json").read_text())
    old["model"]["tie_ar_head"] = False
    old["model"]["max_phonemes"] = old["model"].pop("max_text_tokens")
    (d / "config.json").write_text(json.dumps(old))
    with caplog.at_level(logging.INFO, logger="tts.checkpoint"):
        cfg, part, _ = read_record(d)
        loaded = load_tts_model(d)
    assert part == "ar" and cfg.model.max_text_tokens == 1024 and loaded.part == "ar"
    assert "tie_ar_head" in caplog.text and "max_phonemes" in caplog.text


def test_an_unversioned_front_end_record_is_refused_in_one_line():
    from data_prep.frontend import TextFrontend
    with pytest.raises(ValueError, match="no versioned text front end") as e:
        check_frontend({"frontend": {"tokens_sha256": "abc"}}, TextFrontend.default(), "model m")
    assert "\n" not in str(e.value)


def test_a_yaml_with_a_removed_option_names_it(tmp_path):
    from core.config import ConfigError, load_config
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  tie_ar_head: true\n")
    with pytest.raises(ConfigError, match="tie_ar_head"):
        load_config(TTSConfig, p)
