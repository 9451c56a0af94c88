"""The AR sees its tokens and its place in the text: embedding scale, the durations mode (cache =
recompute, batch = one-by-one, length = planned), the text gain and the text-free baselines."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tts.helpers_models import tiny_model_config
from tts.batch import TTSBatch
from tts.build import build_model
from tts.diagnostics import code_baselines, shuffled_text
from tts.models.alignment import FrameAlignment
from tts.models.decoding import ARRequest, _spread, ar_generate, plan_durations
from tts.sampling import SamplingConfig, make_generator

pytestmark = pytest.mark.usefixtures("one_thread")     # tests/tts/conftest.py
V = 32


def durations_batch(B=4, L=6, seed=0, V=V, code_of_phoneme=None) -> TTSBatch:
    """Random phonemes with random durations (1..4 frames, one 0-frame token per row); codes are random,
    or code_of_phoneme(phoneme id) at every frame of that phoneme."""
    g = torch.Generator().manual_seed(seed)
    ph = torch.randint(5, 37, (B, L), generator=g)
    dur = torch.randint(1, 5, (B, L), generator=g)
    dur[:, 2] = 0                                      # a stress mark: no frames
    T = dur.sum(1)
    codes = torch.randint(0, V, (B, 1, int(T.max())), generator=g)
    if code_of_phoneme is not None:
        for b in range(B):
            frames = torch.repeat_interleave(ph[b], dur[b])
            codes[b, 0, : len(frames)] = code_of_phoneme(frames)
    return TTSBatch(ph, torch.full((B,), L), codes, T, torch.zeros(B, 1, 0, dtype=torch.long),
                    torch.zeros(B, dtype=torch.long), dur)


def train(model, batches, steps, lr=3e-3):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for s in range(steps):
        out = model(batches[s % len(batches)])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return model.eval()


def test_frame_alignment_maps_frames_to_tokens():
    fa = FrameAlignment(torch.tensor([[7, 8, 9, 10]]), torch.tensor([[2, 0, 3, 1]]))
    ph, into, left = fa.at(torch.arange(7)[None])
    assert ph.tolist() == [[7, 7, 9, 9, 9, 10, 10]]          # the 0-frame token owns no frame; past the end: last
    assert into.tolist() == [[0, 1, 0, 1, 2, 0, 1]]
    assert left.tolist() == [[1, 0, 2, 1, 0, 0, 0]]


@pytest.mark.parametrize("std, learns", [(1.0, True), (0.02, False)])
def test_tiny_ar_learns_copy_previous_only_when_tokens_are_visible(std, learns):
    """Codebook-1 codes are runs of 4 equal codes out of 256: copying the previous code scores 3/4.
    With N(0, 1) embeddings a tiny AR learns to copy within 40 steps (dev top-1 ~0.7); with the old
    N(0, 0.02) under unit-scale positions it cannot see the previous code (dev top-1 ~0.02)."""
    torch.manual_seed(0)
    V2 = 256
    cfg = tiny_model_config(n_layers=2, d_model=64, n_heads=4, codebook_size=V2, n_q=1, emb_init_std=std)

    def runs(g, B=8, T=64):
        codes = torch.randint(0, V2, (B, T // 4), generator=g).repeat_interleave(4, dim=1)[:, None]
        return TTSBatch(torch.randint(5, 144, (B, 6), generator=g), torch.full((B,), 6), codes,
                        torch.full((B,), T), torch.zeros(B, 1, 0, dtype=torch.long), torch.zeros(B, dtype=torch.long))
    g = torch.Generator().manual_seed(1)
    ar = train(build_model(cfg, "ar"), [runs(g) for _ in range(40)], 40, lr=1e-3)
    with torch.no_grad():
        acc = float(ar(runs(torch.Generator().manual_seed(99))).metrics["acc"])
    assert (acc > 0.4) == learns, acc


def test_durations_ar_cache_equals_recompute_and_batch_equals_items():
    torch.manual_seed(0)
    cfg = tiny_model_config(codebook_size=V, n_q=1, ar_alignment="durations")
    ar = build_model(cfg, "ar").eval()
    with torch.no_grad():
        for p in ar.parameters():
            p.add_(0.1 * torch.randn_like(p))
    batch = durations_batch()
    out = ar(batch, return_logits=True)
    assert out.metrics["n_tokens"] == float(batch.code_lens.sum())           # no <eos> in this mode
    rows = []
    for b in range(batch.batch_size):
        one = TTSBatch(batch.phonemes[b:b + 1], batch.phoneme_lens[b:b + 1], batch.codes[b:b + 1, :, :batch.code_lens[b]],
                       batch.code_lens[b:b + 1], batch.prompt[b:b + 1], batch.prompt_lens[b:b + 1],
                       batch.durations[b:b + 1])
        rows.append(ar(one, return_logits=True).logits)
    torch.testing.assert_close(out.logits, torch.cat(rows), atol=1e-5, rtol=0)
    # cached decoding of two rows with different prompt lengths = the full forward
    with torch.no_grad():
        phs = [batch.phonemes[b] for b in (0, 1)]
        durs = [batch.durations[b] for b in (0, 1)]
        auds = [batch.codes[b, 0, : batch.code_lens[b]] for b in (0, 1)]
        full = [ar.full_logits(p[None], torch.cat([torch.tensor([cfg.bos_id]), a])[None], d[None])
                for p, a, d in zip(phs, auds, durs)]
        P = [3, 1]
        logits, cache, pos, align = ar.prefill(phs, [a[:n] for a, n in zip(auds, P)], 16, durations=durs)
        for step in range(4):
            for r in range(2):
                torch.testing.assert_close(logits[r], full[r][P[r] + step], atol=1e-4, rtol=0)
            tok = torch.stack([auds[r][P[r] + step] for r in range(2)])
            logits = ar.step(tok, pos, cache, align)
            pos = pos + 1


def test_durations_ar_reads_the_text_and_generates_the_planned_length():
    """Each frame's code is a function of its phoneme: the durations AR learns it in a few dozen steps
    (top-1 near 1), and with another utterance's phonemes it falls far: it uses the text."""
    torch.manual_seed(0)
    cfg = tiny_model_config(n_layers=2, d_model=64, n_heads=4, codebook_size=V, n_q=1, ar_alignment="durations")
    f = lambda ph: (ph * 7) % V                                                   # noqa: E731
    batches = [durations_batch(B=8, L=8, seed=s, code_of_phoneme=f) for s in range(80)]
    ar = train(build_model(cfg, "ar"), batches, 80)
    dev = durations_batch(B=8, L=8, seed=99, code_of_phoneme=f)
    with torch.no_grad():
        right = float(ar(dev).metrics["acc"])
        wrong = float(ar(shuffled_text(dev)).metrics["acc"])
    # with the wrong text only copying the previous frame inside a phoneme is left (about a third)
    assert right > 0.9 and wrong < right - 0.4, (right, wrong)
    # generation: exactly the planned frames, the phonemes' codes, no <eos>
    reqs = [ARRequest(dev.phonemes[b], dev.codes[b, 0, :2], 0, int(dev.code_lens[b]) - 2, make_generator(b),
                      dev.durations[b]) for b in range(3)]
    res = ar_generate(ar, reqs, SamplingConfig(temperature=0.0))
    for b, r in enumerate(res):
        assert r.stop == "durations" and r.codes.numel() == int(dev.code_lens[b]) - 2
        assert (r.codes == dev.codes[b, 0, 2:dev.code_lens[b]]).float().mean() > 0.9
    # the duration head learned the (random) durations' scale at least roughly
    pred = ar.predict_durations(dev.phonemes, dev.phoneme_lens)
    assert pred.shape == dev.phonemes.shape and (pred >= 0).all()


def test_spread_and_plan_durations():
    d = _spread(10, torch.tensor([1.0, 1.0, 2.0, 0.0]), torch.tensor([1, 1, 1, 0]))
    assert int(d.sum()) == 10 and d.tolist()[3] == 0 and (d[:3] >= 1).all()
    torch.manual_seed(0)
    ar = build_model(tiny_model_config(codebook_size=V, n_q=1, ar_alignment="durations"), "ar").eval()
    ph = torch.randint(5, 144, (12,))
    mins = torch.tensor([1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1])
    slow = plan_durations(ar, ph, 5, 40, mins)
    fast = plan_durations(ar, ph, 5, 40, mins, speed=2.0)
    assert int(slow[:5].sum()) == 40                          # the prompt's tokens share its frames
    assert (slow[5:] >= mins[5:]).all() and (fast[5:] >= mins[5:]).all()
    assert int(fast[5:].sum()) < int(slow[5:].sum())


def test_shuffled_text_keeps_lengths_and_changes_identity():
    b = durations_batch(B=3, L=6)
    b.phoneme_lens = torch.tensor([6, 4, 6])
    s = shuffled_text(b)
    assert torch.equal(s.phoneme_lens, b.phoneme_lens) and torch.equal(s.durations, b.durations)
    assert s.phonemes[0].tolist() == b.phonemes[1, :4].tolist() + b.phonemes[1, :2].tolist()   # tiled to 6
    assert s.phonemes[1, :4].tolist() == b.phonemes[2, :4].tolist()


def test_code_baselines_by_hand():
    train = [np.array([[0, 0, 1, 1], [2, 2, 3, 3]]), np.array([[0, 0, 0, 1], [2, 2, 2, 3]])]
    dev = [np.array([[0, 0, 1], [2, 2, 3]])]
    res = code_baselines(iter(train), dev, 2, 4)
    c1 = res["codebook_1"]
    assert c1["copy_previous"]["top1"] == pytest.approx(1 / 3)        # frame 0 is a miss, 0->0 hit, 0->1 miss
    assert c1["unigram"]["top1"] == pytest.approx(2 / 3)              # 0 is the most frequent code
    # codebook 2 is a function of codebook 1 (0->2, 1->3): the conditional baseline is exact
    assert res["codebook_2"]["given_previous_codebook"]["top1"] == 1.0
    assert res["codebook_2"]["unigram"]["top1"] == pytest.approx(2 / 3)
    assert res["codebook_2"]["given_previous_codebook"]["nll"] < res["codebook_2"]["unigram"]["nll"]


def test_monotonicity_and_attention_maps():
    from tts.diagnostics import ar_attention, monotonicity, own_phoneme_share
    diag = torch.zeros(12, 4)
    diag[torch.arange(12), torch.arange(12) // 3] = 1.0
    assert monotonicity(diag) > 0.9
    assert monotonicity(diag.flip(0)) < -0.9
    assert own_phoneme_share(diag, torch.tensor([3, 3, 3, 3])) == 1.0
    torch.manual_seed(0)
    ar = build_model(tiny_model_config(codebook_size=V, n_q=1, ar_alignment="durations"), "ar")
    b = durations_batch(B=2)
    maps = ar_attention(ar, b)
    L, T = int(b.phoneme_lens[0]), int(b.code_lens[0])
    assert len(maps) == ar.cfg.n_layers and maps[0].shape == (T, L)
    # each audio row's attention over the text is a part of a distribution (the rest is on audio)
    assert (maps[0] >= 0).all() and (maps[0].sum(1) <= 1 + 1e-5).all() and maps[0].sum() > 0
    # capturing leaves the model as it was (no hook left behind)
    assert all(getattr(m, "captured", None) is None for m in ar.modules())
