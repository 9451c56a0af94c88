"""codec.models.harmonic and the iSTFT head's harmonic source: F0 classes round-trip, the closed-form sine
bank is the sum it claims, a teacher-forced head renders the pitch it is given (the plain head buzzes at
its frame rate), the loss learns F0 from a latent that carries it, and a chunked decode equals one pass."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from codec.api import Codec
from codec.config import ISTFTConfig, PitchConfig
from codec.inference.streaming import decode_stream
from codec.losses.pitch import PitchLoss
from codec.models.harmonic import F0Bins, cycles, sine_bank, upsample_f0
from codec.models.istft_decoder import ISTFTHead
from data_prep.pitch import median_f0, track_f0
from tests.codec.helpers_inference import noise, one_thread  # noqa: F401
from tests.codec.test_istft_decoder import SMALL, istft_model

pytestmark = pytest.mark.usefixtures("one_thread")
HARMONIC = replace(SMALL, pitch=PitchConfig(source="harmonic"))


def test_f0_bins_round_trip_within_a_few_cents():
    bins = F0Bins(128, 40.0, 600.0)
    f0 = torch.tensor([55.0, 98.0, 151.3, 220.0, 287.5, 410.0])
    logits = torch.log(bins.soft_targets(f0) + 1e-12)
    back = bins.decode(logits)
    assert (1200 * torch.log2(back / f0)).abs().max() < 5.0
    # a bimodal output (octave confusion) decodes to its stronger mode, not to the geometric middle
    mix = torch.log(0.6 * bins.soft_targets(torch.tensor([200.0])) + 0.4 * bins.soft_targets(torch.tensor([100.0])))
    assert abs(float(bins.decode(mix)) - 200.0) < 2.0


def test_sine_bank_is_the_sum_of_its_harmonics():
    sr, f0 = 16000, torch.full((1, 6), 180.0)
    f0[0, 3:] = 230.0
    f_s = upsample_f0(f0, 320)
    run = cycles(f_s, sr)
    bank = sine_bank(run[:, :-1], f_s, sr)
    K = torch.floor(0.95 * sr / 2 / f_s.double())
    theta = 2 * np.pi * run[:, :-1]
    k = torch.arange(1, int(K.max()) + 1, dtype=torch.float64)
    direct = (torch.cos(theta[..., None] * k) * (k <= K[..., None])).sum(-1)
    torch.testing.assert_close(bank.double(), direct, atol=2e-3 * float(K.max()), rtol=0)
    assert run.shape[1] == f_s.shape[1] + 1 and float(run[0, 0]) == 0.0


@pytest.mark.parametrize("aperiodic", [True, False])
@pytest.mark.parametrize("f0_hz", [85.0, 100.0, 240.0])        # 100: a multiple of the 50 Hz frame rate
def test_teacher_forced_head_renders_the_given_pitch(f0_hz, aperiodic):
    torch.manual_seed(0)
    head = ISTFTHead(24, 1280, 320, 1, PitchConfig(source="harmonic", aperiodic=aperiodic), 16000).eval()
    plain = ISTFTHead(24, 1280, 320, 1, None, 16000).eval()
    plain.load_state_dict({k: v for k, v in head.state_dict().items() if k in plain.state_dict()})
    x = torch.randn(1, 24, 100)
    with torch.no_grad():
        voiced = head(x, f0=torch.full((1, 100), f0_hz))[0, 0].numpy()
        buzz = plain(x)[0, 0].numpy()
    assert abs(1200 * np.log2(median_f0(track_f0(voiced, 16000)) / f0_hz)) < 20
    assert not abs(median_f0(track_f0(buzz, 16000)) - f0_hz) <= 20   # the plain head has no such pitch (nan: none)


def test_f0_loss_learns_pitch_from_a_latent_that_carries_it():
    """The F0 classes read F0 off the head's input: trained on frames whose input encodes log F0, the
    decoded F0 lands within 50 cents; with the input shuffled against the targets it cannot."""
    torch.manual_seed(0)
    f0 = 80 * torch.exp(torch.rand(8, 40) * np.log(4.0))           # 80..320 Hz
    feat = torch.stack([torch.log(f0), torch.sin(torch.log(f0) * 3), torch.cos(torch.log(f0) * 3)], 1)
    x = torch.cat([feat, torch.randn(8, 21, 40) * 0.1], 1)          # [B, 24, T]
    loss = PitchLoss(128, 40, 600, 1.0, 1.0, 0.1)

    def fit(inputs):
        head = ISTFTHead(24, 1280, 320, 1, PitchConfig(source="harmonic"), 16000).train()
        opt = torch.optim.Adam(head.parameters(), lr=3e-2)
        for _ in range(150):
            head(inputs, f0=f0)
            out = loss(head.last_pitch, f0)
            opt.zero_grad()
            out["pitch"].backward()
            opt.step()
        head(inputs, f0=f0)
        err = 1200 * torch.log2(head.bins.decode(head.last_pitch.f0_logits.detach()) / f0)
        return float(err.abs().median())

    assert fit(x) < 50
    assert fit(x[torch.randperm(8)]) > 200


@pytest.mark.parametrize("phase", ["head", "noise"])
def test_chunked_decode_equals_one_pass_and_block_size_never_matters(phase):
    model = istft_model(seed=2, istft=replace(HARMONIC, pitch=replace(HARMONIC.pitch, aperiodic_phase=phase)), lstm=1)
    with torch.no_grad():
        model.decoder.post[-1].pitch_proj.bias[-1] = 5.0        # voiced everywhere: the sine bank is used
    c = Codec(model)
    x = noise(24000 + 77, seed=4)
    scale = c.rms_scale(x.numpy())
    e = c.engine
    with torch.inference_mode():
        ref = e.quantizer.encode(e.model.encoder(x[None, None] / torch.tensor(scale)), c.n_q)
        one = e.model.decoder(e.quantizer.decode(ref))[0, 0] * scale
    assert one.abs().amax() > 0.1
    for chunk in (1, 3, 16, 1000):
        outs = [np.concatenate(list(decode_stream(e, ref[0], scale, block_frames=b, chunk=chunk))) for b in (1, 5, 10 ** 6)]
        for o in outs[1:]:
            assert np.array_equal(o, outs[0]), chunk          # canonical windows: bitwise, any block size
        # the running phase integrates float rounding of F0 from windows of other lengths: close, not equal
        np.testing.assert_allclose(outs[0], one.numpy(), rtol=0, atol=2e-3 * float(one.abs().amax()))
    # and the state is what makes it so: windows that each restart the phase at 0 are far off
    e.model.decoder.post.new_stream = lambda: None
    restarted = np.concatenate(list(decode_stream(e, ref[0], scale, block_frames=5, chunk=16)))
    assert np.abs(restarted - one.numpy()).max() > 0.05 * float(one.abs().amax())


def test_old_configs_build_the_plain_head():
    head = istft_model(seed=0, istft=ISTFTConfig(width=24, n_blocks=2, mlp_ratio=2.0)).decoder.post[-1]
    assert not head.harmonic and not hasattr(head, "pitch_proj")
