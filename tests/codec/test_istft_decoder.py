"""codec.models.istft_decoder: the inverse-STFT decoder option works wherever the SEANet decoder does
(training forward/backward, chunked and batched inference, bf16, save/load) and leaves the default
(SEANet) models untouched."""
import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from codec.api import Codec
from codec.build import build_codec, build_decoder
from codec.inference.streaming import StreamingStack, decode_stream, encode_stream
from codec.config import CodecConfig, ISTFTConfig
from codec.models.istft_decoder import ISTFTDecoder, ISTFTHead
from codec.models.seanet import SEANetDecoder
from tests.codec.helpers_inference import code_diversity, noise, one_thread, tiny_config, tiny_model  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ISTFTConfig(width=24, n_blocks=2, mlp_ratio=2.0)


def istft_model(seed: int = 0, istft: ISTFTConfig = SMALL, **kw):
    """tiny_model (codebooks drawn from its own latents) with its decoder swapped for an iSTFT head.

    The log-magnitude biases are raised so the random decoder's output is about unit scale, which
    makes the absolute tolerances below meaningful.
    """
    model = tiny_model(seed, **kw)
    cfg = replace(model.config, seanet=replace(model.config.seanet, decoder="istft", istft=istft))
    torch.manual_seed(seed + 1000)
    model.decoder, model.config = build_decoder(cfg).eval(), cfg
    head = model.decoder.post[-1]
    with torch.no_grad():
        for j in range(head.upsample):              # each sub-frame's log-magnitudes
            start = j * (head.n_fft + 2)
            head.proj.bias[start:start + head.n_fft // 2 + 1] += 3.0
    return model


def snr_db(ref: torch.Tensor, x: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).sum() / (ref - x).pow(2).sum().clamp_min(1e-30)))


# ---------------------------------------------------------------------------------------- the module
@pytest.mark.parametrize("n_fft_hops,upsample", [(0, 1), (2, 1), (3, 1), (5, 1), (0, 2), (3, 4)])  # 0 = 4 hops
@pytest.mark.parametrize("frames", [1, 2, 7, 40])
def test_output_is_exactly_frames_times_hop(n_fft_hops, upsample, frames):
    cfg = tiny_config(ratios=(4, 4))
    hop = cfg.seanet.hop_length
    seanet = replace(cfg.seanet, decoder="istft",
                     istft=replace(SMALL, n_fft=n_fft_hops * hop // upsample, upsample=upsample))
    dec = ISTFTDecoder(seanet).eval()
    z = torch.randn(2, seanet.dimension, frames)
    y = dec(z)
    ref = SEANetDecoder(cfg.seanet)(z)                       # the length SEANet gives
    assert y.shape == ref.shape == (2, 1, frames * hop)
    assert torch.isfinite(y).all() and y.abs().amax() > 0


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = istft_model(seed=0)
    model.train()
    x = noise(8000, seed=2)[None, None].repeat(2, 1, 1)
    out = model(x, 4)
    assert out.audio.shape == x.shape
    loss = (out.audio - x).abs().mean() + out.quant_loss
    loss.backward()
    for name, p in model.decoder.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_forward_under_bf16_autocast_keeps_the_waveform_float32():
    model = istft_model(seed=0)
    x = noise(4000, seed=3)[None, None]                          # 12.5 frames: the output is 13 * hop
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model.decoder(model.encoder(x))
    assert y.dtype == torch.float32 and torch.isfinite(y).all() and y.shape == (1, 1, 13 * 320)


def test_bad_settings_are_refused_clearly():
    cfg = tiny_config().seanet
    with pytest.raises(ValueError, match="non-causal"):
        ISTFTDecoder(replace(cfg, decoder="istft", causal=True))
    with pytest.raises(ValueError, match="n_fft"):
        ISTFTDecoder(replace(cfg, decoder="istft", istft=replace(SMALL, n_fft=cfg.hop_length)))
    with pytest.raises(ValueError, match="upsample=3: must be >= 1 and divide the hop"):
        ISTFTDecoder(replace(cfg, decoder="istft", istft=replace(SMALL, upsample=3)))
    with pytest.raises(ValueError, match="is mono"):
        ISTFTDecoder(replace(cfg, decoder="istft", channels=2))


def test_config_override_picks_the_decoder():
    from pathlib import Path
    from core.config import load_config
    mini = Path(__file__).resolve().parents[2] / "egs/libritts/conf/codec_mini.yaml"
    small = ["seanet.istft.width=32", "seanet.istft.n_blocks=1"]
    cfg = load_config(CodecConfig, [mini], ["seanet.decoder=istft", *small])
    model = build_codec(cfg)
    assert isinstance(model.decoder, ISTFTDecoder) and model.decoder.post[-1].n_fft == 4 * cfg.seanet.hop_length
    assert isinstance(build_codec(load_config(CodecConfig, [mini], ["seanet.decoder=seanet", *small])).decoder,
                      SEANetDecoder)


# --------------------------------------------------------------------------------- receptive field
@pytest.mark.parametrize("n_fft_hops,kernel,upsample", [(4, 7, 1), (3, 5, 1), (2, 3, 1), (4, 7, 2), (3, 3, 2),
                                                       (4, 5, 4), (5, 3, 4), (2, 3, 16)])
def test_declared_receptive_field_is_exact(n_fft_hops, kernel, upsample):
    """Perturb one input frame at a time (random float64 weights): the output blocks that change are
    exactly those the declaration names, so the context is enough and none of it is wasted.
    n_fft is counted in the head's hops (hop / upsample)."""
    cfg = tiny_config(ratios=(4, 4)).seanet
    hop = cfg.hop_length
    seanet = replace(cfg, decoder="istft", istft=replace(SMALL, n_fft=n_fft_hops * hop // upsample,
                                                         kernel_size=kernel, upsample=upsample))
    torch.manual_seed(n_fft_hops)
    post = ISTFTDecoder(seanet).post.double().eval()
    left, right = post.receptive_field()
    n = 2 * (left + right) + 9
    x = torch.randn(1, SMALL.width, n, dtype=torch.float64)
    with torch.no_grad():
        ref = post(x)[0, 0].reshape(n, hop)
        k = n // 2
        bumped = x.clone()
        bumped[..., k] += 3.0 * torch.randn(SMALL.width, dtype=torch.float64)   # not constant: LayerNorm
        changed = (post(bumped)[0, 0].reshape(n, hop) - ref).abs().amax(1) > 1e-9
    blocks = torch.nonzero(changed).flatten()
    # output block j depends on frame k iff j - left <= k <= j + right, i.e. j in [k - right, k + left]
    assert int(blocks.min()) == k - right and int(blocks.max()) == k + left
    assert changed[k - right:k + left + 1].all()


def test_less_context_than_declared_breaks_chunking():
    model = istft_model(seed=1)
    c = Codec(model)
    e = c.engine
    r = e.reach("dec_post")
    assert r.left == r.right == max(model.decoder.post.receptive_field())     # the declaration is used
    z = torch.randn(1, model.config.seanet.dimension, 30)
    with torch.inference_mode():
        h = e.model.decoder.pre(z)
        ref = e.model.decoder.post(h)
        good = torch.cat(StreamingStack(e.model.decoder.post, r, chunk=4).push(h, final=True), -1)
        short = torch.cat(StreamingStack(e.model.decoder.post, replace(r, left=r.left - 1, right=r.right - 1),
                                         chunk=4).push(h, final=True), -1)
    torch.testing.assert_close(good, ref, rtol=0, atol=1e-5)
    assert (short - ref).abs().amax() > 1e-3


# ------------------------------------------------------------------------------------ the inference API
@pytest.mark.parametrize("lstm,upsample", [(1, 1), (0, 1), (0, 4)])
def test_chunked_equals_one_pass(lstm, upsample):
    c = Codec(istft_model(seed=2, istft=replace(SMALL, upsample=upsample), lstm=lstm))
    hop = c.hop_length
    x = noise(24000 + 77, seed=4)
    scale = c.rms_scale(x.numpy())
    e = c.engine
    with torch.inference_mode():
        z = e.model.encoder(x[None, None] / torch.tensor(scale))
        ref = e.quantizer.encode(z, c.n_q)
        ref_audio = e.model.decoder(e.quantizer.decode(ref))[0, 0] * scale
    assert code_diversity(ref) >= 3 and ref_audio.abs().amax() > 0.1
    for chunk in (1, 3, 16, 1000):
        codes = encode_stream(e, [x[i:i + 7 * hop + 5] for i in range(0, x.shape[0], 7 * hop + 5)],
                              scale, c.n_q, chunk=chunk)
        assert torch.equal(codes, ref), chunk
        audio = np.concatenate(list(decode_stream(e, ref[0], scale, block_frames=5, chunk=chunk)))
        np.testing.assert_allclose(audio, ref_audio.numpy(), rtol=0, atol=1e-5)
    # Codec.decode (canonical windows of chunk_frames) equals the same one pass
    torch.testing.assert_close(c.decode(ref, torch.tensor([[scale]]))[0, 0], ref_audio, rtol=0, atol=1e-5)


def test_padded_batch_equals_single():
    c = Codec(istft_model(seed=1))
    lens = [9000, 4000, 4001, 333, 50]
    xs = [noise(n, seed=i) for i, n in enumerate(lens)]
    batch = c.encode(xs)
    audio = c.decode(batch)
    assert audio.shape == (len(lens), 1, max(lens))
    for i in range(len(xs)):
        alone = c.decode(batch.item_codes(i)[None], batch.scales[i:i + 1], num_samples=[lens[i]])
        assert torch.equal(audio[i, :, :lens[i]], alone[0]), i
        assert audio[i, :, lens[i]:].eq(0).all()


def test_inference_copy_folds_rewrites_and_leaves_the_model_alone():
    from codec.models.conv import CLConv1d
    model = istft_model(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    c = Codec(model)
    assert isinstance(c.engine.model.decoder.pre, CLConv1d)              # channels-last rewrite applied
    assert isinstance(model.decoder.pre.conv, torch.nn.Conv1d)           # the original is untouched
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # the rewritten copy decodes as the trainable model does
    codes = c.encode(noise(6000, seed=5)).codes
    with torch.no_grad():
        ref = model.decoder(model.quantizer.decode(codes))
    torch.testing.assert_close(c.decode(codes), ref, rtol=0, atol=1e-5)


def test_bf16_runs_the_blocks_in_bf16_and_stays_close():
    model = istft_model(seed=3)
    hi, lo = Codec(model), Codec(model, precision="bf16")
    post = lo.engine.model.decoder.post
    assert post[1].fc1.weight.dtype == torch.bfloat16                  # a ConvNeXt block
    assert isinstance(post[-1], ISTFTHead) and post[-1].proj.weight.dtype == torch.float32
    res = hi.encode(noise(16000, seed=21))
    y_hi, y_lo = hi.decode(res), lo.decode(res)
    assert not torch.equal(y_hi, y_lo) and snr_db(y_hi, y_lo) >= 25.0
    other = Codec(istft_model(seed=4), precision="bf16")
    assert snr_db(y_hi, other.decode(res)) < 10.0                      # the bound above can fail
    stream = np.concatenate(list(decode_stream(lo.engine, res.item_codes(0), float(res.scales[0, 0]),
                                               block_frames=7, num_samples=16000, chunk=lo.chunk_frames)))
    assert np.array_equal(stream, y_lo[0, 0].numpy())


def test_save_load_round_trip_and_bitstream(tmp_path):
    from codec.bitstream import read_ndvq, write_ndvq
    c = Codec(istft_model(seed=5))
    x = noise(12000, seed=6)
    c.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["seanet"]["decoder"] == "istft" and saved["seanet"]["istft"]["width"] == SMALL.width
    loaded = Codec.from_pretrained(tmp_path / "m")
    assert isinstance(loaded.model.decoder, ISTFTDecoder)
    res = c.encode(x)
    assert torch.equal(loaded.encode(x).codes, res.codes)
    assert torch.equal(loaded.decode(res), c.decode(res))
    # through a .ndvq file
    import soundfile as sf
    sf.write(tmp_path / "in.wav", x.numpy(), c.sample_rate, subtype="FLOAT")
    cf = loaded.encode_file(tmp_path / "in.wav")
    write_ndvq(tmp_path / "a.ndvq", cf)
    wav, sr = loaded.decode_file(tmp_path / "a.ndvq")
    assert sr == c.sample_rate and wav.shape == (12000,)
    np.testing.assert_allclose(wav, c.decode(res)[0, 0].numpy(), rtol=0, atol=1e-6)
    assert np.array_equal(read_ndvq(tmp_path / "a.ndvq").codes, res.item_codes(0).numpy())


# ----------------------------------------------------------------------------- the default is untouched
def test_default_config_builds_seanet_with_the_same_keys():
    cfg = tiny_config()
    assert CodecConfig().seanet.decoder == "seanet"
    model = build_codec(cfg)
    assert type(model.decoder) is SEANetDecoder
    torch.manual_seed(0)
    ref = SEANetDecoder(cfg.seanet)
    assert list(model.decoder.state_dict()) == list(ref.state_dict())
    assert not any("istft" in k for k in model.state_dict())


def test_model_saved_before_the_option_loads_identically(tmp_path):
    """An exported model whose config.json predates `seanet.decoder` / `seanet.istft` (as the old
    code wrote it) loads as SEANet, strictly, and decodes bitwise as the model it was saved from."""
    c = Codec(tiny_model(seed=0))
    c.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    data = json.loads(path.read_text())
    del data["seanet"]["decoder"], data["seanet"]["istft"]
    path.write_text(json.dumps(data))
    loaded = Codec.from_pretrained(tmp_path / "m")
    assert type(loaded.model.decoder) is SEANetDecoder
    res = c.encode(noise(8000, seed=1))
    assert torch.equal(loaded.decode(res), c.decode(res))
