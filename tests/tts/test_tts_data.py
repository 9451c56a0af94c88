"""tts.data: filters, bucketed dynamic batches, prompt modes, step-indexed sampling."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from codec.code_dump import CodeDump
from data_prep.frontend import TextFrontend
from tts.checkpoint import frontend_record
from tts.config import DataConfig
from tts.data import StepBatchSampler, TTSDataset, bucket_batches, collate, count_phones, validation_batches

from tts_dump_fixtures import write_dump

# pairs whose text cannot match the audio, and one that is simply too short
BAD_ROWS = [
    {"id": "bad_silence_with_sentence", "speaker": "spk0", "frames": 300,       # 4 s, 3 phones
     "phonemes": "h ˈ ə l ."},
    {"id": "bad_transcript_too_long", "speaker": "spk1", "frames": 75,          # 1 s, 60 phones
     "phonemes": " _ ".join(["s t ˈ æ k"] * 15)},
    {"id": "bad_punctuation_only", "speaker": "spk2", "frames": 90, "phonemes": ". , !"},
    {"id": "bad_empty", "speaker": "spk2", "frames": 90, "phonemes": ""},
    {"id": "bad_too_short", "speaker": "spk3", "frames": 10, "phonemes": "h ˈ ə"},
    {"id": "lonely_speaker_utt", "speaker": "lonely", "frames": 60, "phonemes": "h ˈ ə l oʊ _ w ˈ ɜː l d"},
]
SEP = TextFrontend.default().symbols.word_sep_id
CFG = DataConfig(min_seconds=0.3, max_seconds=5.0, max_frames_per_batch=400, num_buckets=3, max_batch_size=16,
                 prompt_min_seconds=0.1, prompt_max_seconds=0.4, prompt_max_fraction=0.5, num_workers=0,
                 valid_max_utterances=None)


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    root = tmp_path_factory.mktemp("d")
    d = write_dump(root, n_speakers=4, per_speaker=5, extra_rows=BAD_ROWS)
    encoder, _ = frontend_record(root / "phonemes")
    return d, encoder.tokens_to_ids


def _ds(dump, part="nar", mode="prefix", n_q=4, cfg=CFG):
    d, enc = dump
    return TTSDataset(d, enc, cfg, n_q, part, mode)


def test_sanity_filter_drops_and_counts(dump):
    ds = _ds(dump)
    assert ds.stats.total == 20 + len(BAD_ROWS)
    assert dict(ds.stats.dropped) == {"phones_per_second_low": 2, "phones_per_second_high": 1,
                                      "no_phonemes": 1, "too_short": 1}
    kept = {ds.utt_id(i) for i in range(len(ds))}
    assert ds.stats.kept == len(kept) == 21 and "lonely_speaker_utt" in kept
    assert not any(u.startswith("bad_") for u in kept)
    assert count_phones("h ˈ ə , _ l .") == 3
    # other_utterance needs a second utterance of the speaker
    other = _ds(dump, mode="other_utterance")
    assert other.stats.dropped["no_other_utterance"] == 1 and other.stats.kept == 20
    assert "lonely_speaker_utt" not in {other.utt_id(i) for i in range(len(other))}


def test_first_k_codebooks_and_errors(dump):
    d, enc = dump
    ds = _ds(dump, part="ar", n_q=2)
    full = CodeDump(d)
    item = ds[(3, 0)]
    np.testing.assert_array_equal(item["codes"], full.codes(ds.utt_id(3))[:2])
    with pytest.raises(ValueError, match="n_q=9"):
        TTSDataset(d, enc, CFG, 9, "nar", "prefix")


def test_bucketed_batches_respect_the_frame_budget_and_cover_each_epoch(dump):
    ds = _ds(dump)
    costs = ds.costs()
    assert costs.max() <= CFG.max_frames_per_batch
    rng = np.random.default_rng(0)
    for _ in range(5):
        order = rng.permutation(len(costs))
        batches = bucket_batches(costs, order, CFG.max_frames_per_batch, CFG.num_buckets, CFG.max_batch_size)
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(costs)))     # each item once
        for b in batches:
            assert len(b) * costs[b].max() <= CFG.max_frames_per_batch
        assert any(len(b) > 1 for b in batches)
    tight = bucket_batches(costs, np.arange(len(costs)), int(costs.max()), 1, 100)
    assert all(len(b) * costs[b].max() <= costs.max() for b in tight)


def test_step_sampler_is_a_function_of_the_step_and_splits_ranks(dump):
    ds = _ds(dump)
    costs = ds.costs()
    s0 = StepBatchSampler(costs, 400, 3, 16, seed=7)
    it = iter(s0)
    first = [next(it) for _ in range(12)]
    resumed = iter(StepBatchSampler(costs, 400, 3, 16, seed=7, start_step=5))
    assert [next(resumed) for _ in range(7)] == first[5:]               # exact resume
    other_seed = [StepBatchSampler(costs, 400, 3, 16, seed=8).batch_for_step(s) for s in range(12)]
    assert other_seed != first
    r0 = StepBatchSampler(costs, 400, 3, 16, seed=7, rank=0, world_size=2)
    r1 = StepBatchSampler(costs, 400, 3, 16, seed=7, rank=1, world_size=2)
    epoch_steps = len(r0.epoch_batches(0)) // 2
    seen = Counter()
    for s in range(epoch_steps):
        a, b = {i for i, _ in r0.batch_for_step(s)}, {i for i, _ in r1.batch_for_step(s)}
        assert not a & b
        seen.update(a | b)
    assert max(seen.values()) == 1                                      # no item twice in an epoch


def test_prefix_mode_splits_one_utterance(dump):
    d, _ = dump
    full = CodeDump(d)
    nar, ar = _ds(dump, part="nar"), _ds(dump, part="ar", n_q=1)
    fr = full.frame_rate
    for i in range(len(nar)):
        item = nar[(i, 100 + i)]
        codes = full.codes(nar.utt_id(i))
        p, T = item["prompt"].shape[1], codes.shape[1]
        assert 1 <= p <= max(1, min(int(T * CFG.prompt_max_fraction), round(CFG.prompt_max_seconds * fr)))
        np.testing.assert_array_equal(np.concatenate([item["prompt"], item["codes"]], 1), codes)
        np.testing.assert_array_equal(item["phonemes"], nar.phonemes(i))
        a = ar[(i, 100 + i)]
        np.testing.assert_array_equal(a["codes"], codes[:1])             # the AR: whole utterance
        assert a["prompt"].shape[1] == 0
    # prompt lengths vary with the item seed
    assert len({nar[(0, s)]["prompt"].shape[1] for s in range(20)}) > 1


def test_other_utterance_mode_uses_the_same_speaker_and_another_utterance(dump):
    d, _ = dump
    full = CodeDump(d)
    ds = _ds(dump, mode="other_utterance")
    picked = Counter()
    for i in range(len(ds)):
        for seed in range(6):
            item = ds[(i, seed)]
            me = ds.utt_id(i)
            np.testing.assert_array_equal(item["codes"], full.codes(me))
            prompt = item["prompt"]
            assert 1 <= prompt.shape[1] <= round(CFG.prompt_max_seconds * full.frame_rate)
            # the prompt is a window of exactly one utterance (random codes are unique), not this one
            sources = [j for j in range(len(ds)) if _contains(full.codes(ds.utt_id(j)), prompt)]
            assert len(sources) == 1
            src = ds.utt_id(sources[0])
            assert src != me and ds.speakers[sources[0]] == ds.speakers[i]
            picked[(me, src)] += 1
    assert len(picked) > len(ds)                                       # several partners per utterance


def _contains(codes: np.ndarray, window: np.ndarray) -> bool:
    n = window.shape[1]
    return any(np.array_equal(codes[:, s:s + n], window) for s in range(codes.shape[1] - n + 1))


def test_collate_pads_and_records_lengths(dump):
    ds = _ds(dump)
    items = [ds[(i, i)] for i in range(3)]
    b = collate(items)
    assert b.codes.dtype == torch.long and b.codes.shape[1] == 4
    for k, it in enumerate(items):
        L, T, P = len(it["phonemes"]), it["codes"].shape[1], it["prompt"].shape[1]
        assert (b.phoneme_lens[k], b.code_lens[k], b.prompt_lens[k]) == (L, T, P)
        assert b.phonemes[k, L:].eq(0).all() and b.phonemes[k, :L].ne(0).all()
        assert torch.equal(b.codes[k, :, :T], torch.from_numpy(it["codes"].astype(np.int64)))
    b.validate(4)


def test_validation_batches_cover_the_set_once_across_ranks(dump):
    ds = _ds(dump)
    one = validation_batches(ds, CFG, seed=1)
    halves = validation_batches(ds, CFG, 1, 0, 2) + validation_batches(ds, CFG, 1, 1, 2)
    assert sum(b.batch_size for b in one) == sum(b.batch_size for b in halves) == len(ds)
    again = validation_batches(ds, CFG, seed=1)                          # the same prompts every time
    assert all(torch.equal(a.prompt, b.prompt) for a, b in zip(one, again))


def test_curriculum_serves_short_utterances_first(dump):
    from dataclasses import replace

    from tts.data import curriculum_phases
    ds = _ds(dump)
    cfg = replace(CFG, curriculum_steps=5, curriculum_max_seconds=0.8)
    phases = curriculum_phases(ds, cfg)
    limit = 0.8 * ds.dump.frame_rate
    assert 0 < len(phases[0][1]) < len(ds)
    s = StepBatchSampler(ds.costs(), 400, 3, 16, seed=3, phases=phases)
    early = {i for st in range(5) for i, _ in s.batch_for_step(st)}
    late = {i for st in range(5, 40) for i, _ in s.batch_for_step(st)}
    assert all(ds.frames[i] <= limit for i in early)
    assert any(ds.frames[i] > limit for i in late)
    resumed = StepBatchSampler(ds.costs(), 400, 3, 16, seed=3, start_step=4, phases=phases)
    assert [next(iter(resumed))] == [s.batch_for_step(4)]
    assert curriculum_phases(ds, CFG) is None


def test_durations_file_travels_with_the_items(dump, tmp_path):
    """The AR reads forced-alignment durations: kept items carry them (summing to their frames), an
    utterance the aligner skipped or whose durations do not fit its tokens is dropped and counted."""
    import json
    d, enc = dump
    src = d.parent.parent / "durations" / "train.jsonl"
    rows = [json.loads(ln) for ln in src.read_text().splitlines()]
    d0 = rows[0]["durations"]
    rows[0]["durations"] = d0[:-2] + [d0[-2] + d0[-1]]                 # one token short, same frames
    skipped = rows.pop(1)["id"]                                        # the aligner skipped it
    path = tmp_path / "dur.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = TTSDataset(d, enc, CFG, 1, "ar", "prefix", durations=path)
    assert ds.stats.dropped["durations_mismatch"] == 1 and ds.stats.dropped["no_durations"] == 1
    assert skipped not in {ds.utt_id(i) for i in range(len(ds))}
    batch = collate([ds[(i, 0)] for i in range(4)])
    assert batch.durations is not None and torch.equal(batch.durations.sum(1), batch.code_lens)
    batch.validate(1)
    with pytest.raises(FileNotFoundError, match="durations file"):
        TTSDataset(d, enc, CFG, 1, "ar", "prefix", durations=tmp_path / "missing.jsonl")


def test_ar_context_is_the_tail_of_another_utterance_of_the_speaker(dump):
    """data.ar_context_seconds: an AR item is [<= N s of another utterance of the same speaker, cut at one of
    its phoneme boundaries ; a 0-frame separator ; the item], codes, phonemes and durations alike; the same seed
    gives the same item; it needs durations (to cut at a boundary)."""
    from dataclasses import replace
    d, enc = dump
    dur = d.parent.parent / "durations" / "train.jsonl"
    cfg = replace(CFG, ar_context_seconds=0.3)
    ds = TTSDataset(d, enc, cfg, 1, "ar", "prefix", durations=dur)
    plain = TTSDataset(d, enc, CFG, 1, "ar", "prefix", durations=dur)
    assert "lonely_speaker_utt" not in {ds.utt_id(i) for i in range(len(ds))}       # no other utterance to take
    n_ctx = ds.context
    assert n_ctx == round(0.3 * ds.dump.frame_rate)
    seen_other = set()
    for i in range(len(ds)):
        it = ds[(i, 11)]
        own = plain.positions.tolist().index(int(ds.positions[i]))
        T, L = int(plain.frames[own]), len(plain.phonemes(own))
        assert np.array_equal(it["codes"][:, -T:], plain[(own, 0)]["codes"])            # the item itself, last
        assert np.array_equal(it["phonemes"][-L:], plain.phonemes(own)) and it["phonemes"][-L - 1] == SEP
        assert np.array_equal(it["durations"][-L:], plain.durations(own)) and it["durations"][-L - 1] == 0
        c = it["codes"].shape[1] - T                                                   # context frames
        assert 0 < c <= n_ctx and it["durations"].sum() == it["codes"].shape[1]
        # the context is a suffix of another utterance of the same speaker, starting on a token boundary
        donors = [j for j in range(len(ds)) if ds.speakers[j] == ds.speakers[i] and j != i]
        match = [j for j in donors if int(ds.frames[j]) >= c
                 and np.array_equal(ds.dump.codes(int(ds.positions[j]), 1)[:, -c:], it["codes"][:, :c])
                 and np.array_equal(ds.phonemes(j)[-(len(it["phonemes"]) - L - 1):], it["phonemes"][:-L - 1])]
        assert match, i
        seen_other.add(match[0])
        assert np.array_equal(ds[(i, 11)]["codes"], it["codes"])                      # seeded
    assert len(seen_other) > 1
    batch = collate([ds[(i, 3)] for i in range(4)])
    batch.validate(1)
    with pytest.raises(ValueError, match="ar_context_seconds needs phoneme durations"):
        TTSDataset(d, enc, cfg, 1, "ar", "prefix")
