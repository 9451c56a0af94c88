"""The VALL-E models: masks, cache, packing, stage conditioning, and overfitting a few utterances."""
from __future__ import annotations

import pytest
import torch

from tests.tts.helpers_models import tiny_model_config, tiny_models
from tts.batch import TTSBatch
from tts.build import build_model
from tts.models.decoding import ARRequest, ar_generate, nar_generate
from tts.sampling import SamplingConfig, make_generator

# Cached and recomputed logits go through different matmul shapes; in fp32 they agree to ~1e-6 of
# logits of size ~1, so 1e-4 absolute is a tolerance a real cache bug (wrong position, stale key,
# missing mask) exceeds by orders of magnitude.
ATOL = 1e-4


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/tts/conftest.py


def random_batch(B=3, K=4, V=32, seed=0, garbage_padding=True) -> TTSBatch:
    g = torch.Generator().manual_seed(seed)
    L = torch.tensor([5, 9, 3][:B])
    T = torch.tensor([11, 6, 8][:B])
    P = torch.tensor([4, 0, 3][:B])
    ph = torch.randint(5, 144, (B, int(L.max())), generator=g)
    codes = torch.randint(0, V, (B, K, int(T.max())), generator=g)
    prompt = torch.randint(0, V, (B, K, int(P.max())), generator=g)
    for b in range(B):      # padding: 0 for phonemes, garbage for codes (tts/batch.py allows any value)
        ph[b, L[b]:] = 0
        if garbage_padding:
            codes[b, :, T[b]:] = 10_000
            prompt[b, :, P[b]:] = -7
    return TTSBatch(ph, L, codes, T, prompt, P)


def item(batch: TTSBatch, b: int) -> TTSBatch:
    L, T, P = int(batch.phoneme_lens[b]), int(batch.code_lens[b]), int(batch.prompt_lens[b])
    return TTSBatch(batch.phonemes[b:b + 1, :L], batch.phoneme_lens[b:b + 1], batch.codes[b:b + 1, :, :T],
                    batch.code_lens[b:b + 1], batch.prompt[b:b + 1, :, :P], batch.prompt_lens[b:b + 1])


def perturb_(model: torch.nn.Module, seed: int = 1, std: float = 0.3) -> None:
    """Give the near-identity init (AdaLN modulation, biases) some weight so effects are visible."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(std * torch.randn(p.shape, generator=g) * (p.std() if p.numel() > 1 and p.std() > 0 else 1.0))


# ----------------------------------------------------------------------------------------- AR
@pytest.mark.parametrize("attention", ["prefix_lm", "causal"])
def test_ar_cache_equals_recompute(attention):
    ar, _, cfg = tiny_models(0, ar_attention=attention)
    perturb_(ar)
    g = torch.Generator().manual_seed(3)
    phs = [torch.randint(5, 144, (n,), generator=g) for n in (6, 11, 3)]
    auds = [torch.randint(0, cfg.codebook_size, (n,), generator=g) for n in (14, 9, 12)]
    prompt_lens = [4, 0, 7]
    with torch.no_grad():
        full = [ar.full_logits(p[None], torch.cat([torch.tensor([cfg.bos_id]), a])[None]) for p, a in zip(phs, auds)]
        # batched, left-padded prefill of different prompt lengths, then cached steps
        logits, cache, pos, _ = ar.prefill(phs, [a[:n] for a, n in zip(auds, prompt_lens)], 16)
        rows = list(range(3))
        step = 0
        while rows:
            for r, b in enumerate(rows):
                t = prompt_lens[b] + step
                torch.testing.assert_close(logits[r], full[b][t], atol=ATOL, rtol=0)
            # drop sequence 1 after two steps (as a finished sequence is dropped)
            keep = [r for r, b in enumerate(rows) if prompt_lens[b] + step + 1 < len(auds[b]) and not (b == 1 and step == 2)]
            if not keep:
                break
            if len(keep) < len(rows):
                cache.keep(torch.tensor(keep, dtype=torch.long))
                pos = pos[keep]
                rows = [rows[r] for r in keep]
            tok = torch.stack([auds[b][prompt_lens[b] + step] for b in rows])
            logits = ar.step(tok, pos, cache)
            pos = pos + 1
            step += 1
    assert step >= 4


@pytest.mark.parametrize("attention", ["prefix_lm", "causal"])
def test_ar_mask_hides_future(attention):
    ar, _, cfg = tiny_models(0, ar_attention=attention)
    perturb_(ar)
    b = item(random_batch(), 0)
    out = ar(b, return_logits=True)
    t = 6
    b2 = TTSBatch(b.phonemes, b.phoneme_lens, b.codes.clone(), b.code_lens, b.prompt, b.prompt_lens)
    b2.codes[0, 0, t] = (b2.codes[0, 0, t] + 1) % cfg.codebook_size
    out2 = ar(b2, return_logits=True)
    # logits at audio position i predict code i (input <bos> c_1..c_{i}); code t enters at input t+1
    torch.testing.assert_close(out.logits[: t + 1], out2.logits[: t + 1], atol=1e-6, rtol=0)
    assert (out.logits[t + 1:] - out2.logits[t + 1:]).abs().max() > 1e-3


def test_ar_prefix_lm_mask_pattern():
    ar, _, _ = tiny_models(0, ar_attention="prefix_lm")
    valid = torch.ones(1, 6, dtype=torch.bool)
    m = ar._mask(valid, torch.tensor([0]), torch.tensor([3]))[0, 0]
    assert m[0, 2] and m[1, 2]                           # phonemes see later phonemes
    assert not m[0, 3] and not m[3, 4]                   # nobody sees later audio
    assert m[5, 0] and m[4, 3]                           # audio sees all phonemes and earlier audio
    c = tiny_models(0, ar_attention="causal")[0]._mask(valid, torch.tensor([0]), torch.tensor([3]))[0, 0]
    assert not c[0, 2]


def test_ar_batch_equals_items_with_garbage_padding():
    ar, _, _ = tiny_models(0)
    perturb_(ar)
    batch = random_batch()
    out = ar(batch, return_logits=True)
    singles = torch.cat([ar(item(batch, b), return_logits=True).logits for b in range(3)])
    torch.testing.assert_close(out.logits, singles, atol=1e-5, rtol=0)
    assert out.metrics["n_tokens"] == float((batch.code_lens + 1).sum())     # audio positions + <eos> only
    assert 0.0 <= float(out.metrics["acc"]) <= 1.0


def test_ar_rejects_out_of_range_codes():
    ar, _, cfg = tiny_models(0)
    b = item(random_batch(), 0)
    b.codes[0, 0, 0] = cfg.codebook_size
    with pytest.raises(ValueError, match="codes outside"):
        ar(b)


# ---------------------------------------------------------------------------------------- NAR
def test_nar_sees_its_stage():
    _, nar, cfg = tiny_models(0)
    perturb_(nar)
    x = torch.randn(2, 7, cfg.d_model)
    m = torch.ones(2, 1, 7, 7, dtype=torch.bool)
    c2, c3 = nar.stage_emb(torch.tensor([0, 0])), nar.stage_emb(torch.tensor([1, 1]))
    with torch.no_grad():
        assert (nar.transformer(x, m, cond=c2) - nar.transformer(x, m, cond=c3)).abs().max() > 1e-3
    # and through the model's training path, the stage embedding gets a gradient
    out = nar(random_batch(), stage=3)
    out.loss.backward()
    assert nar.stage_emb.weight.grad[1].abs().sum() > 0 and nar.stage_emb.weight.grad[0].abs().sum() == 0


def test_nar_does_not_see_the_answer():
    """Stage k reads codebooks < k of the target only: changing codebooks >= k leaves its logits alone."""
    _, nar, cfg = tiny_models(0)
    perturb_(nar)
    b = random_batch(garbage_padding=False)
    k = 3
    st = torch.full((3,), k)
    with torch.no_grad():
        a = nar.stage_logits(b.phonemes, b.phoneme_lens, b.prompt, b.prompt_lens, b.codes, b.code_lens, st)
        codes2 = b.codes.clone()
        codes2[:, k - 1:] = torch.randint(0, cfg.codebook_size, codes2[:, k - 1:].shape)
        a2 = nar.stage_logits(b.phonemes, b.phoneme_lens, b.prompt, b.prompt_lens, codes2, b.code_lens, st)
        codes3 = b.codes.clone()
        codes3[:, k - 2] = (codes3[:, k - 2] + 1) % cfg.codebook_size
        a3 = nar.stage_logits(b.phonemes, b.phoneme_lens, b.prompt, b.prompt_lens, codes3, b.code_lens, st)
    torch.testing.assert_close(a, a2, atol=1e-6, rtol=0)
    assert (a - a3).abs().max() > 1e-3


def test_nar_batch_equals_items_and_stage_draw_is_seeded():
    _, nar, cfg = tiny_models(0)
    perturb_(nar)
    batch = random_batch()
    out = nar(batch, stage=2, return_logits=True)
    singles = torch.cat([nar(item(batch, b), stage=2, return_logits=True).logits for b in range(3)])
    torch.testing.assert_close(out.logits, singles, atol=1e-5, rtol=0)
    torch.manual_seed(5)
    l1 = nar(batch).loss
    m1 = set(k for k in nar(batch).metrics if k.startswith("acc_k"))
    torch.manual_seed(5)
    l2 = nar(batch).loss
    assert torch.equal(l1, l2)
    draws = set()
    for s in range(20):
        torch.manual_seed(s)
        draws |= {k for k in nar(random_batch(B=3)).metrics if k.startswith("acc_k")}
    assert draws == {f"acc_k{k}" for k in range(2, cfg.n_q + 1)} and m1 <= draws


@pytest.mark.parametrize("prior", [False, True])
def test_nar_global_voice_vector_reads_the_prompt_and_ignores_its_padding(prior):
    """voice_conditioning=global (and the prompt code prior): another prompt changes the logits through
    the voice vector; garbage beyond prompt_lens changes nothing; batch = items."""
    _, nar, cfg = tiny_models(0, voice_conditioning="global", prompt_code_prior=prior)
    perturb_(nar)
    b = random_batch(garbage_padding=False)
    st = torch.full((3,), 2)
    with torch.no_grad():
        a = nar.stage_logits(b.phonemes, b.phoneme_lens, b.prompt, b.prompt_lens, b.codes, b.code_lens, st)
        other = (b.prompt + 1) % cfg.codebook_size
        a2 = nar.stage_logits(b.phonemes, b.phoneme_lens, other, b.prompt_lens, b.codes, b.code_lens, st)
        padded = torch.cat([b.prompt, torch.randint(0, cfg.codebook_size, (3, cfg.n_q, 5))], 2)
        a3 = nar.stage_logits(b.phonemes, b.phoneme_lens, padded, b.prompt_lens, b.codes, b.code_lens, st)
        v1 = nar.voice_vector(nar._sum_codes(b.prompt, torch.full((3,), cfg.n_q)), b.prompt_lens)
        v2 = nar.voice_vector(nar._sum_codes(other, torch.full((3,), cfg.n_q)), b.prompt_lens)
    assert (a[0] - a2[0]).abs().max() > 1e-3 and (v1[0] - v2[0]).abs().max() > 1e-3
    torch.testing.assert_close(v1[1], v2[1])                     # item 1 has no prompt: the same vector
    torch.testing.assert_close(a, a3, atol=1e-5, rtol=0)
    out = nar(b, stage=2, return_logits=True)
    singles = torch.cat([nar(item(b, i), stage=2, return_logits=True).logits for i in range(3)])
    torch.testing.assert_close(out.logits, singles, atol=1e-5, rtol=0)


def test_nar_prompt_code_prior_is_the_prompts_code_frequencies():
    _, nar, cfg = tiny_models(0, prompt_code_prior=True)
    prompt = torch.tensor([[[0, 0, 0], [1, 1, 2], [3, 3, 3], [0, 0, 0]], [[0, 0, 0], [5, 5, 5], [0, 0, 0], [0, 0, 0]]])
    lp = nar.prompt_log_prior(prompt, torch.tensor([3, 0]), torch.tensor([2, 2]))
    p = lp.exp()
    assert p[0, 1] > p[0, 2] > p[0, 3] and torch.allclose(p.sum(1), torch.ones(2))
    assert torch.allclose(p[1], torch.full((cfg.codebook_size,), 1 / cfg.codebook_size))     # no prompt: uniform


def test_build_model_rejects_unknown_part():
    with pytest.raises(ValueError, match="expected one of"):
        build_model(tiny_model_config(), "vocoder")


# ----------------------------------------------------------------------------------- overfit
@pytest.mark.slow
def test_overfit_a_few_utterances_then_reproduce_them():
    """Both losses go near zero on 4 utterances; the AR then greedily continues a prompt with the
    rest of the training utterance's codebook-1 codes and stops with <eos>; the NAR fills 2..K."""
    torch.manual_seed(0)
    cfg = tiny_model_config(n_layers=2, d_model=64, n_heads=4, ffn_mult=4, codebook_size=32, n_q=3)
    g = torch.Generator().manual_seed(1)
    B, T = 4, 24
    L = torch.tensor([8, 10, 7, 9])
    T_ = torch.tensor([24, 20, 22, 18])
    ph = torch.randint(5, 144, (B, 10), generator=g)
    codes = torch.randint(0, 32, (B, 3, T), generator=g)
    for b in range(B):
        ph[b, L[b]:] = 0
    ar_batch = TTSBatch(ph, L, codes, T_, torch.zeros(B, 3, 0, dtype=torch.long), torch.zeros(B, dtype=torch.long))
    P = 5   # NAR in prefix mode: prompt = first P frames, target = the rest
    nar_batch = TTSBatch(ph, L, codes[:, :, P:], T_ - P, codes[:, :, :P], torch.full((B,), P))
    losses = {}
    for part, batch in (("ar", ar_batch), ("nar", nar_batch)):
        model = build_model(cfg, part).train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
        for step in range(200):
            out = model(batch)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            losses[part] = max(float(model(batch, stage=None if part == "ar" else k).loss)
                               for k in ([None] if part == "ar" else range(2, cfg.n_q + 1)))
        if part == "ar":
            ar = model
        else:
            nar = model
    assert losses["ar"] < 0.05 and losses["nar"] < 0.05, losses
    greedy = SamplingConfig(temperature=0.0)
    reqs = [ARRequest(ph[b, :L[b]], codes[b, 0, :P], 0, 60, make_generator(b)) for b in range(B)]
    res = ar_generate(ar, reqs, greedy)
    for b in range(B):
        assert res[b].stop == "eos"
        assert res[b].codes.tolist() == codes[b, 0, P:T_[b]].tolist()
    full = nar_generate(nar, [ph[b, :L[b]] for b in range(B)], [codes[b, :, :P] for b in range(B)],
                        [r.codes for r in res])
    for b in range(B):
        assert torch.equal(full[b], codes[b, :, P:T_[b]])
