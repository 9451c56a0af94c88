"""codec.api: shapes, round trips, exact padded batches, input handling, save/load."""
import numpy as np
import pytest
import torch

from codec.api import Codec, EncodeResult
from tests.codec.helpers_inference import code_diversity, noise, one_thread, tiny_codec, tiny_model  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def codec():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_codec(seed=0)
    torch.set_num_threads(old)


def test_properties(codec):
    assert codec.sample_rate == 16000 and codec.hop_length == 320
    assert codec.frame_rate == 50.0 and codec.n_q == 4 and codec.codebook_size == 32
    assert codec.resolve_n_q(n_q=2) == 2
    assert codec.resolve_n_q(bandwidth=codec.bandwidths[0]) == 1
    assert codec.resolve_n_q() == 4
    with pytest.raises(ValueError):
        codec.resolve_n_q(n_q=5)
    with pytest.raises(ValueError):
        codec.resolve_n_q(bandwidth=1.0, n_q=1)


def test_encode_decode_shapes(codec):
    x = noise(16000 + 123)
    res = codec.encode(x, 16000, n_q=3)
    assert isinstance(res, EncodeResult)
    assert res.codes.shape == (1, 3, 51) and res.codes.dtype == torch.int64
    assert res.lengths.tolist() == [51] and res.num_samples.tolist() == [16123]
    assert res.scales.shape == (1, 1) and float(res.scales) > 0
    assert int(res.codes.min()) >= 0 and int(res.codes.max()) < 32
    wav = codec.decode(res)
    assert wav.shape == (1, 1, 16123) and wav.dtype == torch.float32 and torch.isfinite(wav).all()
    untrimmed = codec.decode(res.codes, res.scales)
    assert untrimmed.shape == (1, 1, 51 * 320)
    torch.testing.assert_close(untrimmed[..., :16123], wav)


def test_fused_quantizer_matches_model(codec):
    x = noise(8000)
    res = codec.encode(x, n_q=4)
    ref = codec.engine.model.encode(x[None, None] / res.scales[:, :, None], n_q=4).codes
    assert torch.equal(ref, res.codes)
    z = codec.engine.model.quantizer.decode(res.codes)
    torch.testing.assert_close(codec.engine.quantizer.decode(res.codes), z)


@pytest.mark.parametrize("kw", [dict(), dict(causal=True), dict(lstm=0, ratios=(4, 4)), dict(kind="rvq")])
def test_padded_batch_equals_single(kw):
    c = tiny_codec(seed=1, **kw)
    lens = [9000, 4000, 4001, 333, 50, 8999]
    xs = [noise(n, seed=i) for i, n in enumerate(lens)]
    batch = c.encode(xs)
    assert batch.codes.shape[0] == len(lens) and code_diversity(batch.codes) >= 3
    for i, x in enumerate(xs):
        alone = c.encode(x)
        assert torch.equal(batch.item_codes(i), alone.item_codes(0)), f"item {i} (len {lens[i]})"
        assert int(batch.lengths[i]) == alone.codes.shape[-1]
        assert batch.codes[i, :, int(batch.lengths[i]):].eq(0).all()
    # decoding a padded batch equals decoding each alone
    audio = c.decode(batch)
    for i in range(len(xs)):
        alone = c.decode(batch.item_codes(i)[None], batch.scales[i:i + 1], num_samples=[lens[i]])
        torch.testing.assert_close(audio[i, :, :lens[i]], alone[0], rtol=0, atol=1e-6)
        assert audio[i, :, lens[i]:].eq(0).all()
    # batch composition and order do not change codes
    rev = c.encode(xs[::-1])
    for i in range(len(xs)):
        assert torch.equal(rev.item_codes(len(xs) - 1 - i), batch.item_codes(i))


def test_naive_padded_batch_would_differ():
    """The test above can fail: a naive padded conv batch changes codes near an item's end."""
    c = tiny_codec(seed=1)
    short, long = noise(4000, seed=1), noise(9000, seed=2)
    alone = c.encode(short)
    s = alone.scales[0, 0]
    x = torch.zeros(2, 1, 9000)
    x[0, 0, :4000] = short / s
    x[1, 0] = long / c.encode(long).scales[0, 0]
    naive = c.engine.model.encoder(x)
    naive_codes = c.engine.quantizer.encode(naive, 4)[0, :, :alone.codes.shape[-1]]
    assert not torch.equal(naive_codes, alone.codes[0])


def test_input_forms_downmix_and_resample(codec):
    mono = noise(16000, seed=3)
    ref = codec.encode(mono).codes
    assert torch.equal(codec.encode(mono.numpy()).codes, ref)
    assert torch.equal(codec.encode(mono[None]).codes, ref)              # [C=1, T]
    assert torch.equal(codec.encode(mono[None, None]).codes, ref)        # [B=1, C=1, T]
    stereo = torch.stack([mono, mono])
    assert torch.equal(codec.encode(stereo).codes, ref)                  # downmix of identical channels
    assert torch.equal(codec.encode([stereo.numpy(), mono]).codes[1:], ref)
    b = codec.encode(torch.stack([stereo, stereo]))                      # [B, C, T]
    assert b.codes.shape[0] == 2 and torch.equal(b.codes[:1], ref)
    # 48 kHz input is resampled to 16 kHz: same length in frames, codes mostly equal
    import soxr
    up = soxr.resample(mono.numpy(), 16000, 48000, quality="HQ")
    r48 = codec.encode(up, sample_rate=48000)
    assert r48.num_samples.tolist() == [16000] and r48.codes.shape == ref.shape
    with pytest.raises(ValueError):
        codec.encode(torch.zeros(2, 2, 2, 10))
    with pytest.raises(ValueError):
        codec.encode(np.zeros(0, dtype=np.float32))


def test_save_load_identical_codes(tmp_path, codec):
    x = noise(12000, seed=5)
    codec.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "config.json").is_file() and (tmp_path / "m" / "model.safetensors").is_file()
    loaded = Codec.from_pretrained(tmp_path / "m")
    assert loaded.checkpoint_sha256 and len(loaded.checkpoint_sha256) == 64
    assert torch.equal(loaded.encode(x).codes, codec.encode(x).codes)
    torch.testing.assert_close(loaded.decode(codec.encode(x)), codec.decode(codec.encode(x)))
    other = tiny_codec(seed=7)
    assert not torch.equal(other.encode(x).codes, codec.encode(x).codes)
    with pytest.raises(FileNotFoundError):
        Codec.from_pretrained(tmp_path / "missing")


def test_inference_copy_is_folded_and_frozen(codec):
    from torch.nn.utils import parametrize
    assert not any(parametrize.is_parametrized(m) for m in codec.engine.model.modules())
    assert any(parametrize.is_parametrized(m) for m in codec.model.modules())  # original untouched
    assert not codec.engine.model.training


def test_building_a_codec_leaves_the_callers_model_mode_alone():
    model = tiny_model(seed=0)
    model.train()
    Codec(model)
    assert model.training, "Codec(model) switched the caller's (training) model to eval mode"


@pytest.mark.parametrize("bw", [0, -1, 100, float("nan"), "6"])
def test_api_refuses_a_bandwidth_outside_the_codec_like_the_cli(codec, bw):
    """encode(bandwidth=0 / -1 / 100) was silently clamped and NaN was a traceback."""
    with pytest.raises(ValueError, match="is outside .* kbps of this codec"):
        codec.encode(noise(1600), sample_rate=codec.sample_rate, bandwidth=bw)
    lo = codec.kbps(1)
    assert codec.resolve_n_q(bandwidth=lo) == 1 and codec.resolve_n_q(bandwidth=codec.kbps(codec.n_q)) == codec.n_q
