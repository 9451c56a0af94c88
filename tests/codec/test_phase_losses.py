"""The phase-aware losses (codec/losses/phase.py) and the linear STFT loss (codec/losses/spectral.py)."""
from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from codec.losses import MultiResolutionSTFTLoss
from codec.losses.phase import CompressedComplexLoss, PhaseLoss, anti_wrap, phase_terms
from core.config import to_dict

from helpers import tiny_config, tiny_wav, write_corpus

ROOT = Path(__file__).resolve().parents[2]


def _speech(n: int = 2, seconds: float = 0.4) -> torch.Tensor:
    return torch.from_numpy(np.stack([tiny_wav(i, seconds) for i in range(n)]))[:, None]   # [B, 1, T]


def test_anti_wrap_is_distance_to_nearest_multiple_of_two_pi():
    x = torch.linspace(-20, 20, 2001, dtype=torch.float64)
    d = anti_wrap(x)
    assert float(d.min()) >= 0 and float(d.max()) <= math.pi + 1e-12
    k = torch.randint(-5, 6, x.shape, dtype=torch.float64)
    assert torch.allclose(anti_wrap(x + 2 * math.pi * k), d, atol=1e-9)
    assert torch.allclose(anti_wrap(torch.tensor([0.3, -0.3, math.pi - 0.1, 2 * math.pi + 0.2])),
                          torch.tensor([0.3, 0.3, math.pi - 0.1, 0.2]), atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_phase_terms_zero_for_identical_and_invariant_to_wrapping(weighted):
    g = torch.Generator().manual_seed(0)
    phase = (torch.rand(2, 33, 20, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi
    mag = torch.rand(2, 33, 20, generator=g, dtype=torch.float64) if weighted else None
    for v in phase_terms(phase.clone(), phase, mag).values():
        assert float(v) == pytest.approx(0.0, abs=1e-12)
    wrapped = phase + 2 * math.pi * torch.randint(-3, 4, phase.shape, generator=g).double()
    for v in phase_terms(wrapped, phase, mag).values():
        assert float(v) == pytest.approx(0.0, abs=1e-9)
    other = phase + 0.5 * torch.randn(phase.shape, generator=g, dtype=torch.float64)
    a, b = phase_terms(other, phase, mag), phase_terms(other + 2 * math.pi * torch.randint(
        -3, 4, phase.shape, generator=g).double(), phase, mag)
    for key in ("ip", "gd", "iaf"):
        assert float(a[key]) > 0.05
        assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-9)


def test_phase_terms_hand_computed():
    # one frequency bin pair, two frames: differences by hand
    ph_hat = torch.tensor([[[0.0, 1.0], [0.5, 7.0]]])       # [1, F=2, T=2]
    ph = torch.tensor([[[0.2, 0.0], [0.0, 0.0]]])
    d = ph_hat - ph                                          # [[-0.2, 1.0], [0.5, 7.0]]
    wrap = lambda v: abs(v - 2 * math.pi * round(v / (2 * math.pi)))   # noqa: E731
    t = phase_terms(ph_hat, ph)
    assert float(t["ip"]) == pytest.approx(np.mean([wrap(-0.2), wrap(1.0), wrap(0.5), wrap(7.0)]), abs=1e-6)
    assert float(t["gd"]) == pytest.approx(np.mean([wrap(0.5 + 0.2), wrap(7.0 - 1.0)]), abs=1e-6)
    assert float(t["iaf"]) == pytest.approx(np.mean([wrap(1.0 + 0.2), wrap(7.0 - 0.5)]), abs=1e-6)


def test_phase_loss_zero_on_the_target_phase_and_decreases_under_optimisation():
    x = _speech()
    loss = PhaseLoss(n_fft=64, hop=16)
    frames = x.shape[-1] // 16
    target = torch.angle(loss.target(x, frames))
    for v in loss(target + 2 * math.pi, x).values():        # the target's phase, shifted by 2 pi
        assert float(v) == pytest.approx(0.0, abs=1e-4)
    torch.manual_seed(0)
    for weighting in ("none", "magnitude"):
        loss = PhaseLoss(n_fft=64, hop=16, weighting=weighting)
        phase_hat = torch.nn.Parameter(target + 1.0 * torch.randn_like(target))
        opt = torch.optim.Adam([phase_hat], lr=0.02)
        history = []
        for _ in range(60):
            terms = loss(phase_hat, x)
            total = terms["ip"] + terms["gd"] + terms["iaf"]
            history.append(float(total.detach()))
            opt.zero_grad()
            total.backward()
            opt.step()
        assert history[0] > 0.5
        assert history[-1] < 0.5 * history[0]
        assert all(v >= 0 for v in history)


def test_phase_loss_rejects_unknown_weighting():
    with pytest.raises(ValueError, match="phase_weighting"):
        PhaseLoss(64, 16, weighting="power")


def test_compressed_complex_loss_zero_scale_free_and_hand_computed():
    x = _speech(1)
    loss = CompressedComplexLoss(scales=(6,), compress=0.3, eps=0.0)
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-10)
    y = x + 0.05 * torch.randn_like(x)
    assert float(loss(3.0 * y, 3.0 * x)) == pytest.approx(float(loss(y, x)), rel=1e-4)
    # by hand: RMS-normalise by the target, centred reflect-padded Hann frames of 64 at hop 16, rfft
    xs, ys = x[0, 0].double().numpy(), y[0, 0].double().numpy()
    scale = np.sqrt(np.mean(xs ** 2))

    def spec(s):
        s = np.pad(s / scale, 32, mode="reflect")
        w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(64) / 64)
        frames = np.stack([s[i:i + 64] * w for i in range(0, len(s) - 64 + 1, 16)])
        S = np.fft.rfft(frames, axis=1)
        return np.abs(S) ** 0.3 * np.exp(1j * np.angle(S))
    expected = np.mean(np.abs(spec(ys) - spec(xs)) ** 2)
    assert float(loss(y, x)) == pytest.approx(expected, rel=1e-3)


def test_multi_resolution_stft_loss_hand_computed():
    x, y = _speech(1), _speech(2)[1:]
    loss = MultiResolutionSTFTLoss(scales=(6, 7))
    total = 0.0
    for n in (64, 128):
        w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)

        def mag(s):
            s = np.pad(s.astype(np.float64), n // 2, mode="reflect")
            frames = np.stack([s[i:i + n] * w for i in range(0, len(s) - n + 1, n // 4)])
            return np.abs(np.fft.rfft(frames, axis=1))
        a, b = mag(y[0, 0].numpy()), mag(x[0, 0].numpy())
        sc = np.linalg.norm(a - b) / np.linalg.norm(b)
        log_l1 = np.mean(np.abs(np.log(np.maximum(a, 1e-5)) - np.log(np.maximum(b, 1e-5))))
        total += sc + log_l1
    assert float(loss(y, x)) == pytest.approx(total / 2, rel=1e-4)


def test_training_with_phase_and_complex_losses_logs_them(tmp_path):
    write_corpus(tmp_path, n_train=4, n_valid=1)
    cfg = tiny_config(tmp_path)
    cfg = replace(cfg, seanet=replace(cfg.seanet, decoder="istft", istft=replace(cfg.seanet.istft, width=16,
                                                                                    n_blocks=1)),
                  loss=replace(cfg.loss, disc_start=1000, phase_ip=1.0, phase_gd=0.5, phase_iaf=0.5,
                               complex=0.2, complex_scales=(6,)))
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(yaml.safe_dump(to_dict(cfg)))
    cmd = [sys.executable, "-m", "codec.train", "--config", str(cfg_file), f"train.exp_dir={tmp_path / 'exp'}",
           "train.max_steps=3"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true",
                            "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-3000:]
    import json
    rows = [json.loads(line) for line in (tmp_path / "exp" / "losses.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for r in rows:
        assert r["phase_ip"] > 0 and r["phase_gd"] > 0 and r["phase_iaf"] > 0 and r["complex"] > 0
        assert r["phase"] == pytest.approx(r["phase_ip"] + 0.5 * r["phase_gd"] + 0.5 * r["phase_iaf"], rel=1e-4)


def test_phase_losses_need_the_istft_head(tmp_path):
    from codec.build import build_codec
    from codec.train import build_phase_loss
    cfg = tiny_config()
    cfg = replace(cfg, loss=replace(cfg.loss, phase_ip=1.0))
    with pytest.raises(ValueError, match="istft"):
        build_phase_loss(cfg, build_codec(cfg))


@pytest.mark.parametrize("trunk_grad", [True, False])
def test_phase_trunk_grad_switch(trunk_grad):
    from codec.build import build_codec
    from codec.train import build_phase_loss
    cfg = tiny_config()
    cfg = replace(cfg, seanet=replace(cfg.seanet, decoder="istft", istft=replace(cfg.seanet.istft, width=16,
                                                                                    n_blocks=1)),
                  loss=replace(cfg.loss, phase_gd=1.0, phase_iaf=1.0, phase_trunk_grad=trunk_grad))
    torch.manual_seed(0)
    model = build_codec(cfg).train()
    loss = build_phase_loss(cfg, model)
    x = _speech(2, 0.2)
    out = model(x, 2)
    head = model.decoder.post[-1]
    _, phase = head.last_spectrum
    t = loss(phase, x)
    model.zero_grad()
    (t["gd"] + t["iaf"]).backward()
    assert head.proj.weight.grad is not None and float(head.proj.weight.grad.abs().sum()) > 0
    block = model.decoder.post[1]
    reached = block.fc1.weight.grad is not None and float(block.fc1.weight.grad.abs().sum()) > 0
    assert reached == trunk_grad
    # the waveform does not depend on the switch
    with torch.no_grad():
        torch.manual_seed(1)
        a = model(x, 2).audio
        head.keep_detached = not head.keep_detached
        torch.manual_seed(1)
        b = model(x, 2).audio
    assert torch.equal(a, b) and a.shape == x.shape
