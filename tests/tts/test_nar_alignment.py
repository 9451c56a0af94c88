"""The NAR that reads durations (model.nar_alignment = "durations"): what each frame is told of the text,
batch = items, generation with the AR's plan, learning a text-only task that the attention NAR does not
learn in the same steps, and the configurations it refuses."""
from __future__ import annotations

import pytest
import torch

from tests.tts.helpers_models import tiny_models
from tests.tts.test_models import item, perturb_, random_batch
from tts.batch import TTSBatch
from tts.build import build_model
from tts.config import ModelConfig
from tts.diagnostics import shuffled_text
from tts.models.decoding import nar_generate

pytestmark = pytest.mark.usefixtures("one_thread")     # tests/tts/conftest.py


def random_durations(L: torch.Tensor, total: torch.Tensor, Lmax: int, seed: int = 0) -> torch.Tensor:
    """[B, Lmax]: L[b] non-negative frame counts summing to total[b] (0 in the padding)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(len(L), Lmax, dtype=torch.long)
    for b in range(len(L)):
        cuts = torch.sort(torch.randint(0, int(total[b]) + 1, (int(L[b]) - 1,), generator=g)).values
        edges = torch.cat([torch.tensor([0]), cuts, torch.tensor([int(total[b])])])
        out[b, : L[b]] = edges.diff()
    return out


def with_durations(batch: TTSBatch, seed: int = 0) -> TTSBatch:
    dur = random_durations(batch.phoneme_lens, batch.code_lens + batch.prompt_lens, batch.phonemes.shape[1], seed)
    return TTSBatch(batch.phonemes, batch.phoneme_lens, batch.codes, batch.code_lens, batch.prompt, batch.prompt_lens,
                    dur)


def item_d(batch: TTSBatch, b: int) -> TTSBatch:
    one = item(batch, b)
    return TTSBatch(*(getattr(one, f) for f in ("phonemes", "phoneme_lens", "codes", "code_lens", "prompt",
                                                "prompt_lens")), batch.durations[b:b + 1, : int(batch.phoneme_lens[b])])


def test_frames_read_their_durations_and_batch_equals_items():
    """Moving a phoneme boundary changes the logits of a durations NAR (an attention NAR has no durations to
    read: the same batch gives the same logits); batch = one by one; a batch without durations is refused."""
    _, nar, cfg = tiny_models(0, nar_alignment="durations")
    perturb_(nar)
    b = with_durations(random_batch(garbage_padding=False))
    moved = b.durations.clone()
    moved[0, 0] += 1
    moved[0, int(b.phoneme_lens[0]) - 1] -= 1
    if moved[0, int(b.phoneme_lens[0]) - 1] < 0:                                      # keep every count >= 0
        moved[0, int(b.phoneme_lens[0]) - 1] += 1
        moved[0, 0] -= 2
        moved[0, 1] += 1
    st = torch.full((3,), 2)
    with torch.no_grad():
        a = nar.stage_logits(b.phonemes, b.phoneme_lens, b.prompt, b.prompt_lens, b.codes, b.code_lens, st, b.durations)
        a2 = nar.stage_logits(b.phonemes, b.phoneme_lens, b.prompt, b.prompt_lens, b.codes, b.code_lens, st, moved)
        out = nar(b, stage=2, return_logits=True)
        singles = torch.cat([nar(item_d(b, i), stage=2, return_logits=True).logits for i in range(3)])
    assert (a[0] - a2[0]).abs().max() > 1e-3
    torch.testing.assert_close(a[1:], a2[1:])                         # other rows: untouched
    torch.testing.assert_close(out.logits, singles, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="needs phoneme durations"):
        nar(random_batch(garbage_padding=False), stage=2)


def test_generation_with_the_plan_is_batch_invariant_and_checks_the_plan():
    _, nar, cfg = tiny_models(0, nar_alignment="durations")
    perturb_(nar)
    b = with_durations(random_batch(garbage_padding=False))
    L, T, P = b.phoneme_lens, b.code_lens, b.prompt_lens
    args = ([b.phonemes[i, : L[i]] for i in range(3)], [b.prompt[i, :, : P[i]] for i in range(3)],
            [b.codes[i, 0, : T[i]] for i in range(3)], [b.durations[i, : L[i]] for i in range(3)])
    full = nar_generate(nar, *args)
    for i in range(3):
        one = nar_generate(nar, *([a[i]] for a in args))[0]
        assert torch.equal(one, full[i]) and torch.equal(one[0], b.codes[i, 0, : T[i]])
    bad = [d.clone() for d in args[3]]
    bad[1][0] += 1
    with pytest.raises(ValueError, match="item 1: durations must"):
        nar_generate(nar, *args[:3], bad)


def text_task(B: int, seed: int, V: int = 16) -> TTSBatch:
    """Codebook 2 is a function of the frame's phoneme only; codebook 1 is noise; no prompt. Only a model
    that knows which phoneme each frame speaks can predict it."""
    g = torch.Generator().manual_seed(seed)
    L = torch.full((B,), 8)
    ph = torch.randint(10, 10 + V, (B, 8), generator=g)
    dur = torch.randint(1, 5, (B, 8), generator=g)
    T = dur.sum(1)
    c1 = torch.randint(0, V, (B, int(T.max())), generator=g)
    c2 = torch.zeros_like(c1)
    for b in range(B):
        c2[b, : T[b]] = torch.repeat_interleave(ph[b] - 10, dur[b])
    codes = torch.stack([c1, c2], 1)
    return TTSBatch(ph, L, codes, T, torch.zeros(B, 2, 0, dtype=torch.long), torch.zeros(B, dtype=torch.long), dur)


def train_nar(alignment: str, steps: int = 120) -> tuple[float, float]:
    """(top-1 on unseen items, top-1 with their texts shuffled) after `steps` of Adam on the text task."""
    torch.manual_seed(0)
    cfg = ModelConfig(n_layers=1, d_model=32, n_heads=2, ffn_mult=2, dropout=0.0, vocab_size=32, codebook_size=16,
                      n_q=2, max_frames=256, nar_alignment=alignment)
    nar = build_model(cfg, "nar")
    opt = torch.optim.Adam(nar.parameters(), lr=3e-3)
    for s in range(steps):
        loss = nar(text_task(16, seed=s), stage=2).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    nar.eval()
    test = text_task(32, seed=10_000)
    with torch.no_grad():
        return float(nar(test, stage=2).metrics["acc"]), float(nar(shuffled_text(test), stage=2).metrics["acc"])


def test_durations_nar_learns_what_each_frame_says_and_uses_the_text():
    """The failure it fixes: the attention NAR of the recipe never read its text (text gain 0). On a task
    where codebook 2 is the frame's phoneme, the durations NAR learns it in 120 steps and falls to chance with
    another item's text; the attention NAR, same steps, stays far below."""
    acc, shuffled = train_nar("durations")
    acc_att, _ = train_nar("attention")
    assert acc > 0.9, acc
    assert shuffled < 0.3, shuffled
    assert acc_att < acc - 0.3, (acc_att, acc)


def test_refused_configurations(tmp_path):
    with pytest.raises(ValueError, match="needs prompt_mode='prefix'"):
        ModelConfig(nar_alignment="durations", prompt_mode="other_utterance")
    from tests.tts.helpers_models import tiny_exp
    from tts.synthesize import Synthesizer
    with pytest.raises(ValueError, match="the AR plans none"):
        Synthesizer.from_pretrained(exp_dir=tiny_exp(tmp_path, nar_alignment="durations"))
