"""Sampling and the AR decoding loop: filters, repetition guard, length guard, seeds, batching."""
from __future__ import annotations

import pytest
import torch

from tests.tts.helpers_models import tiny_models
from tts.models import ARModel
from tts.models.decoding import ARRequest, ar_generate
from tts.sampling import SamplingConfig, derive_seed, length_bounds, make_generator, sample_tokens


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/tts/conftest.py


def draws(logits: torch.Tensor, cfg: SamplingConfig, n: int = 300, history=None) -> set[int]:
    g = make_generator(0)
    return {int(sample_tokens(logits[None], [g], cfg, history=history)[0]) for _ in range(n)}


def test_filters():
    logits = torch.tensor([0.0, 3.0, 2.9, 2.8, -1.0, 1.0])
    assert draws(logits, SamplingConfig(top_k=2, top_p=1.0, repetition_window=0)) == {1, 2}
    assert draws(logits, SamplingConfig(top_k=0, top_p=1.0, temperature=0.0)) == {1}
    # top-p: {1, 2} hold ~0.6 of the mass; 0.5 keeps both (the first alone is below 0.5)
    assert draws(logits, SamplingConfig(top_k=0, top_p=0.5, repetition_window=0)) == {1, 2}
    assert draws(logits, SamplingConfig(top_k=0, top_p=0.01, repetition_window=0)) == {1}
    assert len(draws(logits, SamplingConfig(top_k=0, top_p=1.0, repetition_window=0), n=600)) == 6


def test_repetition_guard_resamples_repeated_tokens():
    logits = torch.tensor([5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    cfg = SamplingConfig(top_k=1, top_p=1.0, repetition_window=10, repetition_tau=0.1)
    assert draws(logits, cfg, history=[[]]) == {0}                       # nothing repeated yet
    assert draws(logits, cfg, history=[[3, 4] * 5]) == {0}               # token 0 not in the window
    assert len(draws(logits, cfg, history=[[0] + [3] * 9])) > 1         # in the window: full distribution
    off = SamplingConfig(top_k=1, top_p=1.0, repetition_window=0)
    assert draws(logits, off, history=[[0] * 10]) == {0}


def test_eos_masked_until_allowed():
    logits = torch.zeros(2, 5)
    logits[:, 4] = 50.0
    tok = sample_tokens(logits, [make_generator(0), make_generator(1)], SamplingConfig(),
                        allow_eos=torch.tensor([False, True]), eos_id=4)
    assert tok[0] != 4 and tok[1] == 4


def test_rows_are_independent_of_the_batch():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    cfg = SamplingConfig(top_k=0, top_p=1.0)
    seq_b = [[] for _ in range(4)]
    gens = [make_generator(derive_seed(7, i)) for i in range(4)]
    for _ in range(20):
        t = sample_tokens(logits, gens, cfg)
        for i in range(4):
            seq_b[i].append(int(t[i]))
    for i in range(4):
        g = make_generator(derive_seed(7, i))
        seq = [int(sample_tokens(logits[i:i + 1], [g], cfg)[0]) for _ in range(20)]
        assert seq == seq_b[i]
    assert len({tuple(s) for s in seq_b}) == 4


def test_length_bounds():
    cfg = SamplingConfig(min_length_factor=0.5, max_length_factor=2.0, max_seconds=10)
    # the prompt speaks 100 frames for 20 phonemes: 5 frames a phoneme -> 30 phonemes ~ 150 frames
    assert length_bounds(30, 100, 20, 75.0, cfg) == (75, 300)
    lo, hi = length_bounds(30, 0, 0, 75.0, cfg)                   # no prompt: default speaking rate
    assert 0 < lo < hi and hi == pytest.approx(2 * 30 * 75 / cfg.default_phonemes_per_second, abs=1)
    assert length_bounds(3000, 100, 20, 75.0, cfg)[1] == 750       # absolute cap: max_seconds
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0.0)


# ---------------------------------------------------------------------------- decoding loop
def _requests(cfg, seeds, min_len=0, max_len=40):
    g = torch.Generator().manual_seed(11)
    phs = [torch.randint(5, 144, (n,), generator=g) for n in (7, 12, 4, 9)]
    prs = [torch.randint(0, cfg.codebook_size, (n,), generator=g) for n in (5, 0, 9, 3)]
    return [ARRequest(phs[i], prs[i], min_len, max_len + 5 * i, make_generator(s)) for i, s in enumerate(seeds)]


def _force(model: ARModel, eos_logit: float) -> None:
    """Make a model that never (-inf) or always (+big) emits <eos>."""
    eos = model.cfg.eos_id
    base = ARModel.logits.__get__(model)

    def logits(h):
        out = base(h).clone()
        out[..., eos] = eos_logit
        return out
    model.logits = logits


def test_length_guard_stops_a_model_that_never_emits_eos():
    ar, _, cfg = tiny_models(0)
    _force(ar, float("-inf"))
    res = ar_generate(ar, _requests(cfg, [1, 2, 3, 4], min_len=0, max_len=25), SamplingConfig())
    assert [r.stop for r in res] == ["max_length"] * 4
    assert [len(r.codes) for r in res] == [25, 30, 35, 40]


def test_eos_only_after_min_length_and_on_the_sampled_token():
    ar, _, cfg = tiny_models(0)
    _force(ar, 50.0)                                  # <eos> is the argmax everywhere
    res = ar_generate(ar, _requests(cfg, [1, 2, 3, 4], min_len=6, max_len=25), SamplingConfig())
    assert [r.stop for r in res] == ["eos"] * 4 and [len(r.codes) for r in res] == [6] * 4
    ar2, _, _ = tiny_models(0)
    _force(ar2, 0.0)                                  # <eos> plausible but not certain: sampled stops vary
    res = ar_generate(ar2, _requests(cfg, [1, 2, 3, 4], max_len=200), SamplingConfig(top_k=0, top_p=1.0))
    assert all(r.stop == "eos" for r in res) and len({len(r.codes) for r in res}) > 1


def test_decoding_is_seeded_and_batch_invariant():
    ar, _, cfg = tiny_models(0)
    sc = SamplingConfig(top_k=0, top_p=1.0)
    batched = ar_generate(ar, _requests(cfg, [5, 6, 7, 8]), sc)
    again = ar_generate(ar, _requests(cfg, [5, 6, 7, 8]), sc)
    assert all(torch.equal(a.codes, b.codes) for a, b in zip(batched, again))
    # sequences end at different steps (dropped from the batch) and still equal one-by-one decoding
    assert len({len(r.codes) for r in batched}) > 1
    for i, s in enumerate([5, 6, 7, 8]):
        single = ar_generate(ar, [_requests(cfg, [5, 6, 7, 8])[i]], sc)[0]
        assert torch.equal(single.codes, batched[i].codes) and single.stop == batched[i].stop
    other = ar_generate(ar, _requests(cfg, [9, 10, 11, 12]), sc)
    assert any(not torch.equal(a.codes, b.codes) for a, b in zip(batched, other))
