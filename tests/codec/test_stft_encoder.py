"""codec.models.stft_encoder: the spectral encoder option works wherever the SEANet encoder does (training,
chunked and batched inference, bf16, save/load) and leaves the default (SEANet) models untouched."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from codec.api import Codec
from codec.build import build_codec
from codec.inference.streaming import encode_stream
from codec.config import CodecConfig
from codec.models.seanet import SEANetEncoder
from codec.models.stft_encoder import STFTEncoder, STFTFeatures
from tests.codec.helpers_inference import (TINY_STFT_ENCODER, code_diversity, noise, one_thread,  # noqa: F401
                                           tiny_config, tiny_model)

pytestmark = pytest.mark.usefixtures("one_thread")


def stft_model(seed: int = 0, **kw):
    return tiny_model(seed, encoder="stft", lstm=0, **kw)


@pytest.mark.parametrize("upsample", [1, 2, 4])
@pytest.mark.parametrize("samples", [1, 15, 16, 17, 160, 1601])
def test_latent_has_ceil_samples_over_hop_frames(upsample, samples):
    cfg = tiny_config(ratios=(4, 4), lstm=0, encoder="stft",
                      stft_encoder=replace(TINY_STFT_ENCODER, upsample=upsample)).seanet
    enc = STFTEncoder(cfg).eval()
    z = enc(torch.randn(2, 1, samples))
    assert z.shape == (2, cfg.dimension, -(-samples // 16)) and torch.isfinite(z).all()


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    cfg = replace(tiny_config(ratios=(4, 4), lstm=0, encoder="stft"))
    model = build_codec(cfg).train()
    out = model(noise(1600)[None, None], 2)
    ((out.audio - noise(1600)[None, None]).abs().mean() + out.quant_loss).backward()
    missing = [n for n, p in model.encoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("upsample,kernel,n_fft_hops,blocks", [(1, 3, 4, (1, 1)), (2, 3, 4, (1, 1)),
                                                               (2, 7, 3, (2, 1)), (4, 5, 6, (1, 2)),
                                                               (8, 3, 2, (0, 1))])
def test_declared_receptive_field_is_exact(upsample, kernel, n_fft_hops, blocks):
    """Perturb one input block (hop samples) at a time (random float64 weights): the latent frames that
    change are exactly those the declaration names. n_fft is counted in the STFT's hops."""
    hop = 16
    ecfg = replace(TINY_STFT_ENCODER, upsample=upsample, kernel_size=kernel, n_fft=n_fft_hops * hop // upsample,
                   sub_blocks=blocks[0], frame_blocks=blocks[1])
    cfg = tiny_config(ratios=(4, 4), lstm=0, encoder="stft", stft_encoder=ecfg).seanet
    torch.manual_seed(upsample + kernel)
    pre = STFTEncoder(cfg).pre.double().eval()
    left, right = pre.receptive_field()
    n = 2 * (left + right) + 9
    x = torch.randn(1, 1, n * hop, dtype=torch.float64)
    k = n // 2
    with torch.no_grad():
        ref = pre(x)
        changed = []
        for block in range(n):
            bumped = x.clone()
            bumped[..., block * hop:(block + 1) * hop] += torch.randn(hop, dtype=torch.float64)
            changed.append((pre(bumped)[0, :, k] - ref[0, :, k]).abs().amax() > 1e-9)
    blocks_seen = torch.nonzero(torch.tensor(changed)).flatten()
    # frame k depends on input blocks [k - left, k + right], all of them
    assert int(blocks_seen.min()) == k - left and int(blocks_seen.max()) == k + right
    assert all(changed[k - left:k + right + 1])


def test_chunked_encoding_equals_one_pass():
    c = Codec(stft_model(seed=2))
    hop = c.hop_length
    x = noise(24000 + 77, seed=4)
    scale = c.rms_scale(x.numpy())
    e = c.engine
    assert e.reach("enc_pre").left == max(e.model.encoder.pre.receptive_field())     # the declaration is used
    with torch.inference_mode():
        ref = e.quantizer.encode(e.model.encoder(x[None, None] / torch.tensor(scale)), c.n_q)
    assert code_diversity(ref) >= 3
    for chunk in (1, 3, 16, 1000):
        codes = encode_stream(e, [x[i:i + 7 * hop + 5] for i in range(0, x.shape[0], 7 * hop + 5)],
                              scale, c.n_q, chunk=chunk)
        assert torch.equal(codes, ref), chunk
    assert torch.equal(c.encode(x).codes, ref)


def test_padded_batch_equals_single():
    c = Codec(stft_model(seed=1))
    lens = [9000, 4000, 4001, 333, 50]
    xs = [noise(n, seed=i) for i, n in enumerate(lens)]
    batch = c.encode(xs)
    for i, x in enumerate(xs):
        assert torch.equal(batch.item_codes(i), c.encode(x).item_codes(0)), i


def test_bf16_keeps_the_stft_in_float32_and_stays_close():
    model = stft_model(seed=3)
    hi, lo = Codec(model), Codec(model, precision="bf16")
    pre = lo.engine.model.encoder.pre
    assert isinstance(pre[0], STFTFeatures) and pre[-1].norm.weight.dtype == torch.bfloat16
    x = noise(16000, seed=21)[None, None]
    with torch.inference_mode():
        z_hi = hi.engine.model.encoder(x / 0.2)
        z_lo = lo.engine.model.encoder(x / 0.2).float()
    snr = 10 * torch.log10(z_hi.pow(2).sum() / (z_hi - z_lo).pow(2).sum())
    assert not torch.equal(z_hi, z_lo) and snr >= 25.0
    agree = (hi.encode(x[0, 0]).codes == lo.encode(x[0, 0]).codes).float().mean()
    assert agree >= 0.8


def test_save_load_round_trip(tmp_path):
    c = Codec(stft_model(seed=5))
    x = noise(12000, seed=6)
    c.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["seanet"]["encoder"] == "stft" and saved["seanet"]["stft_encoder"]["width"] == 24
    loaded = Codec.from_pretrained(tmp_path / "m")
    assert isinstance(loaded.model.encoder, STFTEncoder)
    res = c.encode(x)
    assert torch.equal(loaded.encode(x).codes, res.codes)
    np.testing.assert_array_equal(loaded.decode(res).numpy(), c.decode(res).numpy())


def test_bad_settings_are_refused_clearly():
    cfg = tiny_config(ratios=(4, 4), lstm=0, encoder="stft").seanet
    with pytest.raises(ValueError, match="non-causal"):
        STFTEncoder(replace(cfg, causal=True))
    with pytest.raises(ValueError, match="is mono"):
        STFTEncoder(replace(cfg, channels=2))
    with pytest.raises(ValueError, match="upsample=3: must be >= 1 and divide the hop"):
        STFTEncoder(replace(cfg, stft_encoder=replace(TINY_STFT_ENCODER, upsample=3)))
    with pytest.raises(ValueError, match="n_fft=6"):
        STFTEncoder(replace(cfg, stft_encoder=replace(TINY_STFT_ENCODER, n_fft=6)))
    with pytest.raises(ValueError, match="seanet.encoder='wav2vec'"):
        build_codec(replace(tiny_config(), seanet=replace(tiny_config().seanet, encoder="wav2vec")))


def test_default_is_the_seanet_encoder():
    assert CodecConfig().seanet.encoder == "seanet"
    model = build_codec(tiny_config())
    assert type(model.encoder) is SEANetEncoder
    assert not any("stft" in k for k in model.state_dict())
