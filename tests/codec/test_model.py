import math
from dataclasses import replace

import pytest
import torch

from codec.build import build_codec
from codec.config import CodecConfig, QuantizerConfig, SEANetConfig


def _tiny(causal=False, ratios=(4, 4)):
    return CodecConfig(sample_rate=8000, seanet=SEANetConfig(n_filters=4, dimension=8, ratios=ratios, lstm_layers=1,
                                                             causal=causal),
                       quantizer=QuantizerConfig(dimension=8, codebook_size=16, n_q=4, kmeans_iters=2))


@pytest.mark.parametrize("length", [1, 317, 24001])
def test_output_length_equals_input_length(length):
    torch.manual_seed(0)
    model = build_codec(_tiny(ratios=(2, 4, 5, 8)))
    x = torch.randn(2, 1, length) * 0.1
    model.train()
    assert model(x, 2).audio.shape == x.shape
    model.eval()
    assert model(x, 2).audio.shape == x.shape
    enc = model.encode(x, 3)
    assert enc.codes.shape == (2, 3, model.num_frames(length)) and enc.codes.dtype == torch.int64
    assert model.decode(enc.codes, enc.scale).shape == (2, 1, model.num_frames(length) * 320)


def test_causal_future_does_not_change_past():
    torch.manual_seed(0)
    cfg = _tiny(causal=True)
    model = build_codec(replace(cfg, normalize=False))   # the RMS scale would look at the future
    x = torch.randn(1, 1, 800) * 0.1
    model.train()
    model(x, 4)                                # k-means init
    model.eval()
    T = 640                                    # a multiple of the hop
    extra = torch.randn(1, 1, 400) * 0.1
    a = model(x[..., :T], 4).audio
    b = model(torch.cat([x[..., :T], extra], -1), 4).audio[..., :T]
    assert torch.allclose(a, b, atol=1e-5)
    # the non-causal model does look ahead
    model_nc = build_codec(replace(_tiny(causal=False), normalize=False))
    model_nc.train(); model_nc(x, 4); model_nc.eval()
    a = model_nc(x[..., :T], 4).audio
    b = model_nc(torch.cat([x[..., :T], extra], -1), 4).audio[..., :T]
    assert not torch.allclose(a, b, atol=1e-5)


def test_encode_decode_shapes_and_n_q_for_bandwidth():
    paper = CodecConfig()
    assert paper.frame_rate == 75
    assert [paper.n_q_for_bandwidth(b) for b in (0.5, 1.0, 1.5, 3.0, 6.0, 12.0, 24.0, 48.0)] == [1, 1, 2, 4, 8, 16, 32, 32]
    torch.manual_seed(0)
    model = build_codec(_tiny())
    x = torch.randn(3, 1, 1600) * 0.1
    model.train(); model(x, 4); model.eval()
    codes = model.encode(x, 2).codes
    assert codes.shape == (3, 2, 100) and int(codes.max()) < 16
    assert model.decode(codes).shape == (3, 1, 1600)


def test_slaney_filterbank_has_unit_area_filters_and_htk_is_unchanged():
    from codec.models.spectral import mel_filterbank
    sr, n_fft = 24000, 8192
    fb = mel_filterbank(sr, n_fft, 40, kind="slaney")
    area = fb.sum(1) * (sr / n_fft)                 # integral over Hz of each triangle
    torch.testing.assert_close(area[2:], torch.ones(38), rtol=0.02, atol=0.0)
    htk = mel_filterbank(sr, n_fft, 40)
    assert torch.isclose(htk.max(1).values, torch.ones(40), atol=0.05).all()   # HTK: peak ~1 (a bin near the centre), unnormalised
    assert not torch.allclose(fb / fb.max(1, keepdim=True).values, htk, atol=1e-3)   # another scale


def test_mel_loss_options():
    from codec.losses import MultiScaleMelLoss
    x = torch.randn(1, 1, 4800)
    y = x + 0.1 * torch.randn_like(x)
    full = MultiScaleMelLoss(24000, 32, (8, 9))(y, x)
    l1_only = MultiScaleMelLoss(24000, 32, (8, 9), mse_weight=0.0)(y, x)
    assert 0 < l1_only < full
    assert MultiScaleMelLoss(24000, 32, (8, 9), power=2.0, filterbank="slaney")(x, x) == 0


def test_stft_loss_sees_harmonics_the_mel_loss_pools():
    """Two harmonic tones a few Hz apart at 3 kHz fall in the same 64-band mel bin at n_fft 2048, so
    the mel loss barely separates them; the linear-STFT loss does. Zero on identical inputs, and its
    gradient reaches the waveform."""
    from codec.losses import MultiResolutionSTFTLoss, MultiScaleMelLoss
    t = torch.arange(16000) / 16000
    a = torch.sin(2 * math.pi * 3000 * t)[None, None]
    b = torch.sin(2 * math.pi * 3040 * t)[None, None]
    stft, mel = MultiResolutionSTFTLoss((9, 10, 11)), MultiScaleMelLoss(16000, 64, (11,), mse_weight=0.0)
    assert stft(a, a) == 0
    assert stft(b, a) > 5 * mel(b, a)
    x = b.clone().requires_grad_(True)
    stft(x, a).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().amax() > 0
