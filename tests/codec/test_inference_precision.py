"""Inference modes: channels-last rewrites equal the plain modules; bf16 codes are valid and
deterministic (batch / chunk invariant) and its audio near fp32's on any CPU; folding weight norm
leaves the original model intact."""
import numpy as np
import pytest
import torch

from codec.api import Codec
from codec.inference.streaming import encode_stream
from codec.models.conv import CLConv1d, CLPolyphaseConvTranspose1d, SConv1d, SConvTranspose1d, as_channels_last
from tests.codec.helpers_inference import code_diversity, noise, one_thread, tiny_model  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def snr_db(ref: torch.Tensor, x: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).sum() / (ref - x).pow(2).sum().clamp_min(1e-30)))


# ------------------------------------------------------------------------ channels-last rewrites
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kernel,stride,dilation", [(7, 1, 1), (3, 1, 2), (1, 1, 1), (8, 4, 1), (16, 8, 1)])
@pytest.mark.parametrize("length", [1, 2, 5, 97, 640])
def test_cl_conv_equals_sconv(causal, kernel, stride, dilation, length):
    torch.manual_seed(kernel * 100 + length)
    m = SConv1d(6, 5, kernel, stride=stride, dilation=dilation, causal=causal, norm="none").eval()
    x = torch.randn(2, 6, length)
    with torch.inference_mode():
        ref = m(x)
        out = CLConv1d(m)(x)
        out_from_cl = CLConv1d(m)(as_channels_last(x))        # input layout does not matter
    assert out.shape == ref.shape
    assert out.transpose(1, 2).is_contiguous()                # channels-last memory
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    assert torch.equal(out, out_from_cl)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("stride", [2, 5, 8])
def test_cl_polyphase_equals_transposed_conv(causal, stride):
    torch.manual_seed(stride)
    m = SConvTranspose1d(6, 4, 2 * stride, stride=stride, causal=causal, norm="none").eval()
    x = torch.randn(2, 6, 13)
    with torch.inference_mode():
        ref = m(x)
        out = CLPolyphaseConvTranspose1d(m)(x)
    assert out.shape == ref.shape == (2, 4, 13 * stride)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_fold_leaves_original_model_usable():
    """Two handles of one model, then the trainable model still works (it used to lose .weight)."""
    model = tiny_model(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a, b = Codec(model), Codec(model)
    x = noise(4000, seed=1)
    assert torch.equal(a.encode(x).codes, b.encode(x).codes)
    conv = model.encoder.pre[0].conv
    assert conv.weight.shape == conv.parametrizations.weight.original1.shape
    with torch.no_grad():
        model(x[None, None])                                   # the training forward still runs
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


# ----------------------------------------------------------------------------------------- bf16
@pytest.fixture(scope="module")
def pair():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    model = tiny_model(seed=3)
    yield Codec(model), Codec(model, precision="bf16")
    torch.set_num_threads(old)


def test_unknown_precision_rejected():
    with pytest.raises(ValueError):
        Codec(tiny_model(seed=0), precision="fp16")


def test_bf16_engine_runs_in_bf16(pair):
    _, lo = pair
    m = lo.engine.model
    assert lo.precision == lo.engine.precision == "bf16"
    assert m.encoder.pre[2].block[1].weight.dtype == torch.bfloat16     # a residual conv
    assert m.encoder.lstm.lstm.weight_ih_l0.dtype == torch.bfloat16
    assert m.encoder.pre[0].weight.dtype == torch.float32              # sees the waveform
    assert m.decoder.post[-1].weight.dtype == torch.float32            # writes the waveform
    assert lo.engine.quantizer.w_t.dtype == torch.float32


def test_bf16_padded_batch_and_chunks_are_exact(pair):
    _, lo = pair
    lens = [9000, 4000, 333, 8999]
    xs = [noise(n, seed=10 + i) for i, n in enumerate(lens)]
    batch = lo.encode(xs)
    assert code_diversity(batch.codes) >= 3
    for i, x in enumerate(xs):
        assert torch.equal(batch.item_codes(i), lo.encode(x).item_codes(0)), i
    rev = lo.encode(xs[::-1])
    for i in range(len(xs)):
        assert torch.equal(rev.item_codes(len(xs) - 1 - i), batch.item_codes(i))
    # streamed in blocks of any size: bitwise the same codes (canonical windows)
    x, scale = xs[0], float(batch.scales[0, 0])
    for block in (320, 7 * 320 + 5, 10 ** 6):
        pieces = [x[j:j + block] for j in range(0, x.shape[0], block)]
        assert torch.equal(encode_stream(lo.engine, pieces, scale, lo.n_q, chunk=lo.chunk_frames)[0],
                           batch.item_codes(0))
    # decoding a padded batch equals decoding each item alone, bitwise
    audio = lo.decode(batch)
    for i in range(len(xs)):
        alone = lo.decode(batch.item_codes(i)[None], batch.scales[i:i + 1], num_samples=[lens[i]])
        assert torch.equal(audio[i, :, :lens[i]], alone[0])


def test_bf16_what_users_rely_on(pair):
    """What holds on every CPU (with or without AVX512-BF16 / AMX, whose bf16 kernels round differently):
    bf16 runs, gives valid codes of fp32's shape, is deterministic, and decodes to finite audio of the
    right length and energy, and its decoder turns fp32's codes into fp32's audio up to rounding.

    Code *agreement* with fp32 is not asserted: on an untrained model fed noise most latents sit near
    several equally likely codes, so which one bf16 rounding picks depends on the CPU's bf16 kernels (an
    AMX machine agreed on 11% of stage-1 frames here, while on the trained recipe codec and real speech
    the same machine agrees on 98.7-100%, measured by benchmarks/bench_codec_inference.py --sections quality)."""
    hi, lo = pair
    x = noise(32000, seed=21)
    r_hi, r_lo = hi.encode(x), lo.encode(x)
    assert r_lo.codes.shape == r_hi.codes.shape and r_lo.codes.dtype == torch.int64
    assert int(r_lo.codes.min()) >= 0 and int(r_lo.codes.max()) < lo.codebook_size
    assert torch.equal(r_lo.lengths, r_hi.lengths) and torch.equal(r_lo.scales, r_hi.scales)
    assert torch.equal(lo.encode(x).codes, r_lo.codes)                  # deterministic within bf16
    y_hi, y_lo = hi.decode(r_hi), lo.decode(r_hi)                        # same codes, two decoders
    assert y_lo.shape == y_hi.shape and y_lo.dtype == torch.float32 and bool(torch.isfinite(y_lo).all())
    assert torch.equal(lo.decode(r_hi), y_lo)                            # deterministic within bf16
    assert not torch.equal(y_hi, y_lo)                                  # bf16 really ran
    energy = float(y_lo.pow(2).mean() / y_hi.pow(2).mean())
    assert 0.5 <= energy <= 2.0, energy                                  # relative tolerance on energy
    # closeness where it means something: the decoder has no argmax, so from the same codes bf16's audio
    # is fp32's up to rounding (36-44 dB on AVX512-BF16 and on emulated bf16; 20 dB leaves room)
    assert snr_db(y_hi, y_lo) >= 20.0
    own = lo.decode(r_lo)                                                # bf16 end to end
    assert own.shape == y_hi.shape and bool(torch.isfinite(own).all())


def test_bf16_decode_stream_matches_decode(pair):
    from codec.inference.streaming import decode_stream
    _, lo = pair
    res = lo.encode(noise(20000, seed=8))
    ref = lo.decode(res)[0, 0].numpy()
    out = np.concatenate(list(decode_stream(lo.engine, res.item_codes(0), float(res.scales[0, 0]),
                                            block_frames=7, num_samples=20000, chunk=lo.chunk_frames)))
    assert np.array_equal(out, ref)


def test_cli_precision_flag(tmp_path, pair):
    import soundfile as sf
    from codec.__main__ import main
    from codec.bitstream import read_ndvq
    hi, lo = pair
    hi.save_pretrained(tmp_path / "model")
    x = noise(16000, seed=30).numpy()
    sf.write(tmp_path / "in.wav", x, 16000, subtype="FLOAT")
    for prec, codec in (("fp32", hi), ("bf16", lo)):
        nd = tmp_path / f"{prec}.ndvq"
        assert main(["encode", str(tmp_path / "in.wav"), str(nd), "--model", str(tmp_path / "model"),
                     "--precision", prec]) == 0
        assert np.array_equal(read_ndvq(nd).codes, codec.encode(x).item_codes(0).numpy()), prec
    with pytest.raises(SystemExit):
        main(["encode", str(tmp_path / "in.wav"), str(tmp_path / "x.ndvq"), "--model", str(tmp_path / "model"),
              "--precision", "int8"])
