import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from codec.config import QuantizerConfig
from codec.quantization import EuclideanCodebook, NormalCodebook, build_quantizer

CFG = QuantizerConfig(kind="ndvq", dimension=6, codebook_size=16, n_q=3, kmeans_iters=5)


def _ndvq(seed=0, **kw):
    torch.manual_seed(seed)
    cb = NormalCodebook(replace(CFG, **kw))
    with torch.no_grad():
        cb.mu.copy_(torch.randn(16, 6))
        cb.logvar.copy_(torch.randn(16, 6) * 0.7)
    cb.initialized.fill_(True)
    return cb


def test_ndvq_selection_is_bruteforce_argmax_of_gaussian_loglik():
    cb = _ndvq()
    z = torch.randn(200, 6) * 1.5
    mu, logvar = cb.mu.detach(), cb.logvar.detach()
    # the slow way: full diagonal-Gaussian log-likelihood, [N, K, D]
    diff = z[:, None, :] - mu[None]
    ll = (-0.5 * diff ** 2 / logvar.exp()[None] - 0.5 * logvar[None] - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert torch.equal(cb.encode(z), ll.argmax(1))
    # and it is not simply the nearest mean (the variances matter)
    nearest = torch.cdist(z, mu).argmin(1)
    assert not torch.equal(nearest, ll.argmax(1))


def test_ndvq_eval_returns_mean_train_returns_sample_with_code_sigma():
    cb = _ndvq()
    z = cb.mu.detach()[torch.arange(16).repeat(500)] + 0.01 * torch.randn(8000, 6)
    cb.eval()
    value, codes, _, _ = cb.quantize(z)
    assert torch.equal(value, cb.mu.detach()[codes])
    cb.train()
    torch.manual_seed(1)
    value, codes, _, _ = cb.quantize(z)
    mu, sigma = cb.mu.detach()[codes], (0.5 * cb.logvar.detach()[codes]).exp()
    assert not torch.allclose(value, mu)
    eps = (value.detach() - mu) / sigma            # must be standard normal
    assert abs(eps.mean().item()) < 0.05
    assert abs(eps.std().item() - 1.0) < 0.05


def test_straight_through_gradients():
    rq = build_quantizer(replace(CFG, dimension=6))
    rq.train()
    x = torch.randn(2, 6, 50, requires_grad=True)
    out = rq(x, 3)
    out.x.pow(2).sum().backward()           # a "reconstruction" loss on the output alone
    assert x.grad is not None and x.grad.abs().sum() > 0
    for layer in rq.layers:
        for p in (layer.mu, layer.logvar):
            assert p.grad is None or p.grad.abs().sum() == 0
    rq.zero_grad()
    x2 = torch.randn(2, 6, 50)
    rq(x2, 3).loss.backward()               # the quantizer loss reaches mu
    assert rq.layers[0].mu.grad is not None and rq.layers[0].mu.grad.abs().sum() > 0


def test_residual_structure_sum_of_stage_decodes():
    for kind in ("ndvq", "rvq"):
        torch.manual_seed(0)
        rq = build_quantizer(replace(CFG, kind=kind))
        x = torch.randn(2, 6, 40)
        rq.train()
        rq(x, 3)                             # k-means init
        rq.eval()
        out = rq(x, 3)
        codes = rq.encode(x, 3)
        assert torch.equal(out.codes, codes)
        total = sum(rq.layers[k].decode(codes[:, k].reshape(-1)) for k in range(3)).reshape(2, 40, 6).transpose(1, 2)
        assert torch.allclose(out.x, total, atol=1e-5)
        assert torch.allclose(rq.decode(codes), total, atol=1e-5)
        # later stages code what the earlier ones left: the residual error shrinks
        e1 = (rq.decode(codes[:, :1]) - x).pow(2).mean()
        e3 = (rq.decode(codes) - x).pow(2).mean()
        assert e3 < e1


def test_rvq_nearest_is_bruteforce():
    torch.manual_seed(0)
    cb = EuclideanCodebook(replace(CFG, kind="rvq"))
    z = torch.randn(300, 6)
    assert torch.equal(cb.nearest(z), torch.cdist(z, cb.embed).argmin(1))


def test_rvq_ema_moves_codes_and_dead_codes_are_replaced():
    torch.manual_seed(0)
    cb = EuclideanCodebook(replace(CFG, kind="rvq", kmeans_iters=3))
    cb.train()
    z = torch.randn(256, 6)
    cb.quantize(z)                           # init
    before = cb.embed.clone()
    cb.quantize(z + 3.0)                     # shifted data: EMA pulls used codes towards it
    assert not torch.allclose(cb.embed, before)
    # make a code dead: tiny cluster size, far away
    cb.cluster_size[5] = 0.0
    cb.embed[5] = 1e3
    cb.quantize(z)
    assert cb.embed[5].abs().max() < 100      # replaced by a batch vector


def test_ndvq_dead_code_reset_option():
    cb = _ndvq(ndvq_dead_code_reset=True)
    with torch.no_grad():
        cb.mu[3] = 1e3
    cb.train()
    cb.quantize(torch.randn(64, 6))
    assert cb.mu[3].abs().max() < 100


def test_logvar_init_modes():
    z = torch.randn(400, 6) * 0.2
    for mode, check in (("zero", lambda lv: torch.all(lv == 0)),
                        ("kmeans", lambda lv: lv.mean() < math.log(0.2 ** 2))):
        torch.manual_seed(0)
        cb = NormalCodebook(replace(CFG, logvar_init=mode))
        cb.train()
        cb.quantize(z)
        assert bool(cb.initialized)
        assert check(cb.logvar.detach()), mode


# -- quantizer maintenance (dead codes, k-means init) ----------------------------------------------------------------
def test_rvq_replaced_code_sits_on_its_pick_after_the_same_steps_ema():
    torch.manual_seed(0)
    cb = EuclideanCodebook(replace(CFG, kind="rvq", kmeans_iters=3))
    cb.train()
    z = torch.randn(256, 6)
    cb.quantize(z)                                   # init
    cb.cluster_size[5] = 0.0                          # dead, and far from every vector
    cb.embed[5] = 50.0
    cb.embed_avg[5] = 50.0
    torch.manual_seed(3)
    picks = z[torch.randint(0, z.shape[0], (cb.codebook_size,))]   # what the replacement will draw
    torch.manual_seed(3)
    cb.quantize(z)                                   # replace, select, then the EMA update of this batch
    pick = picks[5]
    # The EMA of the same step moves the code at most by its own small share (1 - decay) towards the
    # vectors it won; before the fix it landed at pick / threshold, half way to the origin.
    assert torch.linalg.norm(cb.embed[5] - pick) < 0.05 * torch.linalg.norm(pick) + 0.05


def test_ndvq_uniform_usage_reseeds_no_code():
    # A mini batch's usage: 256 codes, ~2.4 uses a code a step. Raw counts against threshold 2 re-seeded
    # a third of the codebook every step; an EMA of usage re-seeds nothing under uniform use.
    K, D = 256, 8
    cfg = replace(CFG, dimension=D, codebook_size=K, ndvq_dead_code_reset=True, dead_code_threshold=2.0)
    torch.manual_seed(0)
    cb = NormalCodebook(cfg)
    with torch.no_grad():
        cb.mu.copy_(torch.randn(K, D) * 3)
        cb.logvar.fill_(math.log(0.01))
    cb.initialized.fill_(True)
    cb.usage.fill_(600 / K)                           # as after k-means init on such a batch
    cb.train()
    before = cb.mu.detach().clone()
    for step in range(30):
        idx = torch.randint(0, K, (600,))            # uniform use, ~2.34 a code
        cb.quantize(cb.mu.detach()[idx] + 0.01 * torch.randn(600, D))
    assert torch.equal(cb.mu.detach(), before), "a code in uniform use was re-seeded"
    # ... while a code nobody uses is re-seeded once its usage has decayed
    with torch.no_grad():
        cb.mu[7] = 1e3
    for step in range(200):
        idx = torch.randint(0, K, (600,))
        cb.quantize(before[idx] + 0.01 * torch.randn(600, D))
    assert cb.mu[7].abs().max() < 100


def test_selection_after_init_is_not_dominated_by_the_log_determinant():
    # A realistic first batch: 600 latent vectors for 256 codes (1-3 points a cluster), uneven scales.
    torch.manual_seed(0)
    K, D = 256, 16
    z = torch.randn(600, D) * torch.linspace(0.1, 2.0, D)
    cb = NormalCodebook(replace(CFG, dimension=D, codebook_size=K, kmeans_iters=10))
    cb.train()
    cb.quantize(z)                                    # k-means init + log-variance init
    zt = torch.randn(2000, D) * torch.linspace(0.1, 2.0, D)
    picked = cb.encode(zt)
    # The log-determinant may break near ties, but the distance term must decide: the code picked with
    # it equals the code picked by the variance-weighted distance alone for nearly every vector.
    mu, var = cb.mu.detach(), cb.logvar.detach().exp()
    dist_only = (-0.5 * ((zt[:, None, :] - mu[None]) ** 2 / var[None]).sum(-1)).argmax(1)
    agree = (picked == dist_only).float().mean()
    assert agree > 0.9, f"log-determinant decided {1 - agree:.0%} of selections"
    # and the picks are spread over the codebook, not a few wide codes
    assert picked.unique().numel() > K // 2


def test_ndvq_residual_from_sample_or_mean_in_training():
    """The spec forms stage i+1's training residual from stage i's sample; ndvq_residual="mean" from
    its mean, as at inference. Either way the decoder input is the sum of the samples."""
    x = torch.randn(2, 6, 40)
    seen = {}
    for mode in ("sample", "mean"):
        torch.manual_seed(0)
        rq = build_quantizer(replace(CFG, ndvq_residual=mode))
        rq.train()
        rq(x, 3)                                       # k-means init of every stage
        inputs = []
        for layer in rq.layers:
            layer.quantize = (lambda f: lambda z: (inputs.append(z.clone()), f(z))[1])(layer.quantize)
        torch.manual_seed(1)
        out = rq(x, 2)
        r1 = x.transpose(1, 2).reshape(-1, 6)
        assert torch.equal(inputs[0], r1)
        mean1 = rq.layers[0].decode(out.codes[:, 0].reshape(-1))
        torch.manual_seed(1)                           # the same noise draw as the forward pass
        sample1 = mean1 + torch.exp(0.5 * F.embedding(out.codes[:, 0].reshape(-1), rq.layers[0].logvar)) \
            * torch.randn_like(mean1)
        want = r1 - (mean1 if mode == "mean" else sample1)
        assert torch.allclose(inputs[1], want, atol=1e-5), mode
        seen[mode] = inputs[1]
        assert not torch.allclose(out.x, rq.decode(out.codes), atol=1e-3)   # the decoder still gets samples
    assert not torch.allclose(seen["sample"], seen["mean"], atol=1e-3)
