"""core.trainer: the pure pieces of the shared training plumbing (the loops are tested end to end
in tests/codec/test_train.py and tests/tts/test_tts_train.py)."""
from __future__ import annotations

import json
import math

import pytest

from core.trainer import StepGuard, TrainingDiverged, lr_at, step_seed, truncate_jsonl


def test_lr_schedules():
    assert lr_at(0, 1.0, 4) == pytest.approx(0.25) and lr_at(3, 1.0, 4) == 1.0
    assert lr_at(100, 1.0, 4) == 1.0                                         # constant
    cos = [lr_at(s, 1.0, 10, "cosine", 110, 0.1) for s in range(0, 200)]
    assert cos[9] == 1.0 and cos[60] == pytest.approx(0.1 + 0.9 * 0.5)       # half way: the mean
    assert cos[110] == pytest.approx(0.1) and cos[199] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(cos[9:], cos[10:]))                     # monotone after warmup
    inv = [lr_at(s, 1.0, 16, "inverse_sqrt") for s in (15, 63, 255)]
    assert inv == pytest.approx([1.0, 0.5, 0.25])
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_at(20, 1.0, 4, "linear")


def test_step_guard_counts_and_aborts():
    g = StepGuard(max_bad_in_row=3)
    for step, bad in enumerate([False, True, True, False, True]):
        g.update(bad, step)
    assert g.counters == {"bad_steps_total": 3, "bad_in_row": 1}
    g.update(True, 5)
    with pytest.raises(TrainingDiverged, match="3 non-finite steps in a row"):
        g.update(True, 6)


def test_truncate_jsonl_drops_steps_after_the_checkpoint(tmp_path):
    p = tmp_path / "losses.jsonl"
    p.write_text("".join(json.dumps({"step": s, "loss": s / 2}) + "\n" for s in range(6)))
    truncate_jsonl(p, 4)
    assert [json.loads(ln)["step"] for ln in p.read_text().splitlines()] == [0, 1, 2, 3]
    truncate_jsonl(tmp_path / "missing.jsonl", 0)                            # nothing to do


def test_step_seed_depends_on_every_input():
    seeds = {step_seed(a, b, c) for a in (1, 2) for b in (0, 1) for c in (0, 1)}
    assert len(seeds) == 8 and not math.isnan(float(next(iter(seeds))))


def test_load_config_takes_one_path_or_a_list(tmp_path):
    # A single path used to be iterated character by character ("config file not found: e").
    from codec.config import CodecConfig
    from core.config import ConfigError, load_config
    y = tmp_path / "o.yaml"
    y.write_text("optim:\n  schedule: cosine\ntrain:\n  full_bandwidth_prob: 0.5\n")
    for files in (str(y), y, [y]):
        cfg = load_config(CodecConfig, files, ["optim.min_lr_ratio=0.1"])
        assert (cfg.optim.schedule, cfg.train.full_bandwidth_prob, cfg.optim.min_lr_ratio) == ("cosine", 0.5, 0.1)
    with pytest.raises(ConfigError, match="schedule"):
        load_config(CodecConfig, [], ["optim.schedule=linear"])


def test_named_streams_draw_what_the_numbered_tags_drew():
    # The named streams (core.seeding) replaced literal tags in the generators' keys: the same numbers
    # must come out, or every earlier run would stop replaying.
    import random

    import numpy as np

    from core.seeding import Stream, codec_bandwidth_rng, codec_epoch_rng, stream_rng, stream_seed
    for seed, a, b in [(0, 0, 0), (1234, 5, 1), (7, 123456, 3)]:
        assert step_seed(seed, a, b) == int(np.random.default_rng([seed, 2, a, b]).integers(0, 2 ** 62))
        assert (int(stream_rng(seed, Stream.CODEC_CROP, a).integers(0, 2 ** 63 - 1))
                == int(np.random.default_rng([seed, 1, a]).integers(0, 2 ** 63 - 1)))
        assert (stream_rng(seed, Stream.TTS_BUCKETS, a, b).permutation(9)
                == np.random.default_rng([seed, 3, a, b]).permutation(9)).all()
        assert (stream_rng(seed, Stream.TTS_ITEMS, a, b).integers(0, 2 ** 62, 4)
                == np.random.default_rng([seed, 4, a, b]).integers(0, 2 ** 62, 4)).all()
        assert stream_seed(seed, Stream.TTS_VALID, a) == int(np.random.default_rng([seed, 5, a]).integers(0, 2 ** 62))
        assert (stream_rng(seed, Stream.ALIGN_ORDER, a).permutation(9)
                == np.random.default_rng([seed, 7, a]).permutation(9)).all()
        assert (codec_epoch_rng(seed, a).permutation(9) == np.random.default_rng([seed, a]).permutation(9)).all()
        assert codec_bandwidth_rng(seed, a).random() == random.Random(seed * 1_000_003 + a).random()
