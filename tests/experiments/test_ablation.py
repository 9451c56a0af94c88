"""experiments.ablation units: SNR mixing, babble, code flips, code statistics, variants, verdict logic."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.ablation import codestats, robustness, verdict
from experiments.ablation.plan import (AUTHORS_QUANTIZER, VARIANTS, Plan, check_run_info, non_quantizer_differences,
                                       quantizer_differences)
from experiments.ablation.runner import EvalSettings, ablation_bandwidths, select_runs, speaker_balanced
from tests.codec.helpers import tiny_wav, write_corpus
from tests.codec.helpers_inference import one_thread, tiny_codec  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
MINI = str(Path(__file__).resolve().parents[2] / "egs" / "libritts" / "conf" / "codec_mini.yaml")


# ------------------------------------------------------------------------------------------ signals
@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0, -5.0])
def test_mix_at_snr_gives_the_requested_snr(snr):
    clean = tiny_wav(0, 1.0, 16000).astype(np.float64)
    for noise in (robustness.white_noise(clean.size, np.random.default_rng(1)),
                  robustness.babble_noise(clean.size, [tiny_wav(i, 0.3 + 0.2 * i, 16000) for i in range(1, 5)], 3,
                                          np.random.default_rng(2))):
        noisy = robustness.mix_at_snr(clean, noise, snr).astype(np.float64)
        added = noisy - clean
        got = 10 * np.log10(np.mean(clean ** 2) / np.mean(added ** 2))
        assert got == pytest.approx(snr, abs=1e-3)


def test_mix_at_snr_rejects_bad_input():
    with pytest.raises(ValueError, match="no energy"):
        robustness.mix_at_snr(np.ones(10), np.zeros(10), 10)
    with pytest.raises(ValueError, match="shapes"):
        robustness.mix_at_snr(np.ones(10), np.ones(9), 10)


def test_noisy_sets_are_deterministic_and_babble_excludes_the_item():
    wavs = [tiny_wav(i, 0.5, 8000) for i in range(3)]
    a = robustness.make_noisy(wavs, "babble", 10.0, seed=3)
    b = robustness.make_noisy(wavs, "babble", 10.0, seed=3)
    c = robustness.make_noisy(wavs, "babble", 10.0, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    # item 0's babble comes from item 1 only (a 1 kHz tone), never from item 0 itself (a 100 Hz tone)
    t = np.arange(4000) / 8000
    tones = [np.sin(2 * np.pi * 100 * t), np.sin(2 * np.pi * 1000 * t)]
    added = robustness.make_noisy(tones, "babble", 0.0, seed=0)[0] - tones[0]
    spec = np.abs(np.fft.rfft(added))
    assert spec[500] > 100 * spec[50]          # bins of 1000 Hz and 100 Hz (2 Hz a bin)
    with pytest.raises(ValueError, match="at least one other"):
        robustness.make_noisy(wavs[:1], "babble", 10.0, seed=0)
    with pytest.raises(ValueError, match="unknown noise kind"):
        robustness.make_noisy(wavs, "pink", 10.0, seed=0)


# ------------------------------------------------------------------------------------------ flips
def test_flip_fraction_counts_valid_frames_only():
    a = torch.zeros(2, 3, 4, dtype=torch.long)
    b = a.clone()
    assert robustness.flip_fraction(a, b) == [0.0, 0.0, 0.0]
    b[0, 1, 0] = 1          # a valid frame of item 0
    b[1, 2, 3] = 1          # a padding frame of item 1 (length 2): not counted
    got = robustness.flip_fraction(a, b, torch.tensor([4, 2]))
    assert got == [0.0, pytest.approx(1 / 6), 0.0]


def test_flips_zero_for_identical_input_and_positive_under_heavy_noise():
    codec = tiny_codec(seed=0)
    wavs = [tiny_wav(i, 0.6, codec.sample_rate) for i in range(3)]
    enc = codec.encode(wavs, n_q=codec.n_q)
    again = codec.encode([w.copy() for w in wavs], n_q=codec.n_q)
    assert robustness.flip_fraction(enc.codes, again.codes, enc.lengths) == [0.0] * codec.n_q
    zs = robustness.latents(codec, wavs, enc.scales[:, 0].tolist())
    flips = robustness.latent_noise_flips(codec, zs, [0.0, 3.0], seed=0)
    assert flips["0"] == [0.0] * codec.n_q
    assert min(flips["3"]) > 0.2
    noisy = robustness.make_noisy(wavs, "white", -10.0, seed=0)
    enc_n = codec.encode(noisy, n_q=codec.n_q)
    assert robustness.flip_fraction(enc.codes, enc_n.codes, enc.lengths)[0] > 0.2


# ------------------------------------------------------------------------------------------ code statistics
@pytest.mark.parametrize("kind", ["ndvq", "rvq"])
def test_stage_stats(kind):
    codec = tiny_codec(seed=1, kind=kind)
    wavs = [tiny_wav(i, 0.6, codec.sample_rate) for i in range(3)]
    enc = codec.encode(wavs, n_q=codec.n_q)
    zs = robustness.latents(codec, wavs, enc.scales[:, 0].tolist())
    stats = codestats.stage_stats(codec.model.quantizer.eval(), zs)
    assert len(stats) == codec.n_q
    frames = int(enc.lengths.sum())
    for k, s in enumerate(stats):
        assert sum(s.counts_sorted) == frames and s.counts_sorted == sorted(s.counts_sorted, reverse=True)
        assert s.codes_used == len(torch.unique(enc.codes[:, k][enc.codes[:, k] >= 0]))  # padding frames are 0
        assert 1.0 <= s.perplexity <= s.codes_used + 1e-6
        assert s.distance >= 0 and s.distance_rel > 0
        if kind == "ndvq":
            q = s.sigma_quantiles
            assert len(q) == len(codestats.SIGMA_QUANTILES) and q == sorted(q) and q[0] > 0
        else:
            assert s.sigma_quantiles is None


# ------------------------------------------------------------------------------------------ variants and plan
def _plan(tmp_path, **kw) -> Plan:
    m = tmp_path / "train.jsonl"
    m.write_text("")
    return Plan(out=tmp_path / "abl", codec_conf=MINI, train_manifests=(str(m),), steps=kw.pop("steps", 10), **kw)


def test_variants_differ_only_in_quantizer_settings(tmp_path):
    plan = _plan(tmp_path, seeds=(0,))
    cfgs = {r.variant.name: plan.resolve_config(r) for r in plan.runs()}
    assert set(cfgs) == {v.name for v in VARIANTS}
    for name, cfg in cfgs.items():
        assert non_quantizer_differences(cfgs["ndvq"], cfg) == [], name
        assert cfg.train.max_steps == 10 and cfg.train.max_minutes is None and cfg.train.seed == 0
    assert cfgs["rvq"].quantizer.kind == "rvq"
    assert cfgs["ndvq_sample_weight"].quantizer.sample_weight == 0.25
    assert cfgs["ndvq_mean_residual"].quantizer.ndvq_residual == "mean" and cfgs["ndvq"].quantizer.ndvq_residual == "sample"
    a = cfgs["ndvq_authors"].quantizer
    assert a.logvar_init == "zero" and not a.ndvq_dead_code_reset and a.sample_weight == 0
    # the departures are computed from the resolved configs (never a copied list)
    dep = quantizer_differences(cfgs["ndvq_authors"], cfgs["ndvq"])
    assert all(k in {o.split("=")[0].split(".")[1] for o in AUTHORS_QUANTIZER} for k in dep)
    assert dep.get("logvar_init", ("zero",))[0] == "zero"


def test_run_info_guards_a_changed_run(tmp_path):
    plan = _plan(tmp_path, seeds=(0,), variants=("ndvq",))
    run = plan.runs()[0]
    check_run_info(plan, run)
    check_run_info(_plan(tmp_path, seeds=(0,), variants=("ndvq",), steps=20), run)   # more steps: fine
    other = _plan(tmp_path, seeds=(0,), variants=("ndvq",), train_args=("optim.lr=1e-4",))
    with pytest.raises(ValueError, match="other settings"):
        check_run_info(other, run)
    (run.dir / ".done.train").write_text(json.dumps({"steps": 10}))
    with pytest.raises(ValueError, match="more than the requested"):
        check_run_info(_plan(tmp_path, seeds=(0,), variants=("ndvq",), steps=5), run)


def test_select_runs_and_bad_names(tmp_path):
    plan = _plan(tmp_path, seeds=(0, 1))
    assert [r.key for r in select_runs(plan.runs(), "rvq")] == ["rvq/seed0", "rvq/seed1"]
    assert [r.key for r in select_runs(plan.runs(), "ndvq/seed1,rvq/seed0")] == ["rvq/seed0", "ndvq/seed1"]
    with pytest.raises(ValueError, match="unknown"):
        select_runs(plan.runs(), "vq")
    with pytest.raises(ValueError, match="unknown variant"):
        _plan(tmp_path, variants=("ndvq", "bogus"))


def test_bandwidths_and_speaker_balanced_items(tmp_path):
    from core.config import load_config
    from codec.config import CodecConfig
    cfg = load_config(CodecConfig, [MINI])
    bws = ablation_bandwidths(cfg)
    one = cfg.frame_rate * cfg.bits_per_code / 1000
    assert bws[0] == pytest.approx(one) and cfg.n_q_for_bandwidth(bws[0]) == 1 and bws[1:] == sorted(cfg.bandwidths)
    rows = [{"id": f"{s}_{i}", "speaker": s} for s in "abc" for i in range(3)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    picked = [json.loads(x)["id"] for x in speaker_balanced(tmp_path / "m.jsonl", 5, tmp_path / "o.jsonl").read_text().splitlines()]
    assert picked == ["a_0", "b_0", "c_0", "a_1", "b_1"]
    assert EvalSettings("m").key() == EvalSettings("m", jobs=7).key() != EvalSettings("m", items=3).key()


# ------------------------------------------------------------------------------------------ verdict
def test_outcome_against_the_seed_spread():
    assert verdict.outcome([0.80, 0.81, 0.82], [0.70, 0.71, 0.72], True)[0] == "win"
    assert verdict.outcome([0.80, 0.81, 0.82], [0.70, 0.71, 0.72], False)[0] == "loss"     # lower is better
    oc, gain, spread = verdict.outcome([0.70, 0.75, 0.80], [0.71, 0.72, 0.73], True)
    assert oc == "tie" and gain == pytest.approx(0.03) and spread == pytest.approx(0.05)
    assert verdict.outcome([0.3, 0.31], [0.5, 0.52], False)[0] == "win"                   # mel: lower wins
    assert verdict.outcome([0.9], [0.1, 0.2], True)[0] == "undetermined"                  # one seed: no spread
    assert verdict.above_floor([0.8, 0.81], [0.5, 0.52], True)
    assert not verdict.above_floor([0.52, 0.6], [0.5, 0.52], True)


def test_compare_all_flags_floor_and_writes_verdict():
    table = {"clean|stoi|1.5": {"ndvq": [0.80, 0.81, 0.82], "rvq": [0.70, 0.71, 0.72]},
             "clean|stoi|no_information": {"ndvq": [0.79, 0.80, 0.81], "rvq": [0.50, 0.50, 0.51]},
             "clean|mel|1.5": {"ndvq": [0.50, 0.52, 0.54], "rvq": [0.40, 0.41, 0.42]},
             "clean|mel|no_information": {"ndvq": [0.9, 0.9, 0.9], "rvq": [0.9, 0.9, 0.9]},
             "flips_latent|0.1": {"ndvq": [0.1, 0.11, 0.12], "rvq": [0.1, 0.12, 0.13]}}
    comps = {(c.section, c.label): c for c in verdict.compare_all(table, ["ndvq", "rvq"])}
    stoi = comps[("clean", "STOI @ 1.5 kbps")]
    assert stoi.outcome == "win" and stoi.at_floor              # ndvq is not above its own floor
    mel = comps[("clean", "mel L1 @ 1.5 kbps")]
    assert mel.outcome == "loss" and not mel.at_floor
    assert comps[("flips_latent", "code flips (mean over stages), latent noise 0.1 x std")].outcome == "tie"
    text = "\n".join(verdict.verdict_text(list(comps.values()), ["ndvq", "rvq"], {"ndvq": 3, "rvq": 3}, 10, "note"))
    assert "clean audio: 1 win, 0 ties, 1 loss of 2" in text and "[at floor]" in text
    assert "code stability under latent noise: 0 wins, 1 tie, 0 losses of 1" in text and "low usage" not in text
    table["usage|perplexity_mean"] = {"ndvq": [2.0, 2.5, 3.0], "rvq": [40.0, 50.0, 60.0]}
    flips = [c for c in verdict.compare_all(table, ["ndvq", "rvq"]) if c.section == "flips_latent"]
    assert flips[0].low_usage
    assert "[low usage" in "\n".join(verdict.verdict_text(flips, ["ndvq", "rvq"], {"ndvq": 3, "rvq": 3}, 10, ""))


# ------------------------------------------------------------------------------------------ F0 caches
def test_prepare_f0_gives_the_harmonic_codec_its_cache_once(tmp_path):
    from codec.data import needs_f0
    from experiments.ablation.runner import prepare_f0
    write_corpus(tmp_path / "c", n_train=3, n_valid=1, seconds=0.3)
    man = tmp_path / "data" / "manifests" / "train-clean-100.jsonl"
    man.parent.mkdir(parents=True)
    man.write_text((tmp_path / "c" / "train.jsonl").read_text())

    def plan(*train_args, manifest=man):
        return Plan(out=tmp_path / "abl", codec_conf=MINI, train_manifests=(str(manifest),), steps=5, seeds=(0,),
                    train_args=train_args)
    p = plan()
    cache = tmp_path / "data" / "f0" / "train-clean-100.npz"       # where run.sh stage 3 puts (or finds) it
    assert prepare_f0(p) == (str(cache),)
    with np.load(cache) as z:
        assert sorted(z.files) == ["train0", "train1", "train2"]
    cfg = p.resolve_config(p.runs()[0])                           # codec_mini.yaml as shipped: harmonic head
    assert needs_f0(cfg) and list(cfg.data.train_f0) == [str(cache)]
    mtime = cache.stat().st_mtime_ns
    prepare_f0(plan())
    assert cache.stat().st_mtime_ns == mtime                       # made once, then reused
    # a training utterance the cache lacks: a one-line error before anything trains
    with open(man, "a") as f:
        f.write(json.dumps({"id": "late", "path": "late.wav"}) + "\n")
    with pytest.raises(ValueError, match="lack 1 of 4 training utterances"):
        prepare_f0(plan())
    # nothing trains in this invocation (--report-only): the path only, no tracking, no check
    other = tmp_path / "data" / "manifests" / "other.jsonl"
    q = plan(manifest=other)
    assert prepare_f0(q, make=False) == (str(tmp_path / "data" / "f0" / "other.npz"),)
    assert not (tmp_path / "data" / "f0" / "other.npz").exists()
    # a decoder without the harmonic source needs none; caches named by --train-args are used as given
    plain = plan("seanet.istft.pitch.source=none")
    assert prepare_f0(plain) == () and not any("train_f0" in o for o in plain.run_overrides(plain.runs()[0]))
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        prepare_f0(plan(f"data.train_f0=[{tmp_path / 'nope.npz'}]"))


# ------------------------------------------------------------------------------------------ pitch and downstream tables
def _result(variant: str, seed: int, gpe: float, mel: float = 0.5) -> dict:
    """A run's result.json reduced to what table.collect reads: one bitrate and the floor row, with pitch."""
    rows = [{"kind": "codes", "kbps": 1.5, "scores": {"mel": {"mean": mel, "std": 0.0, "n": 2}},
             "pitch": {"cents_median": 10 * gpe, "within_50": 1 - gpe, "gpe": gpe, "vde": 0.1}},
            {"kind": "no_information", "kbps": None, "scores": {"mel": {"mean": 2.0, "std": 0.0, "n": 2}},
             "pitch": {"cents_median": 1600.0, "within_50": 0.0, "gpe": 1.0, "vde": float("nan")}}]
    return {"variant": variant, "seed": seed, "keys": ["mel"], "clean": {"rows": rows},
            "robustness": {"rows": [], "input_flips": {}, "latent_flips": {}},
            "codestats": [{"stage": 1, "perplexity": 20.0 + seed, "codes_used": 30, "distance_rel": 0.5}]}


def test_pitch_rows_enter_the_table_and_the_verdict_with_their_direction():
    from experiments.ablation.table import collect
    res = ([_result("ndvq", s, g) for s, g in enumerate((0.05, 0.06, 0.07))]
           + [_result("rvq", s, g) for s, g in enumerate((0.20, 0.21, 0.22))])
    table = collect(res)
    assert table["clean|gpe|1.5"]["ndvq"] == pytest.approx([0.05, 0.06, 0.07])
    assert "clean|vde|no_information" not in table                 # NaN (nothing voiced) is left out
    comps = {c.label: c for c in verdict.compare_all(table, ["ndvq", "rvq"])}
    gpe = comps["GPE @ 1.5 kbps"]
    assert gpe.section == "pitch" and gpe.outcome == "win" and gpe.gain == pytest.approx(0.15) and not gpe.at_floor
    assert comps["F0 within 50 c @ 1.5 kbps"].outcome == "win"      # higher is better there
    assert comps["F0 error (cents) @ 1.5 kbps"].outcome == "win"
    assert comps["VDE @ 1.5 kbps"].outcome == "tie" and comps["mel L1 @ 1.5 kbps"].section == "clean"
    text = "\n".join(verdict.verdict_text(list(comps.values()), ["ndvq", "rvq"], {"ndvq": 3, "rvq": 3}, 10, ""))
    assert "pitch of clean audio (F0 track against the recording's): 3 wins, 1 tie, 0 losses of 4" in text


def test_downstream_table_aggregates_seeds_and_reads_the_codec_runs_code_entropy():
    import math
    from experiments.ablation.downstream_report import downstream_comparisons, downstream_table

    def row(v, s, wer, ce):
        res = {"rows": {"tts": {"wer": wer}}, "tts": {"ar": {"valid": {"ce": ce}}}}
        return {"variant": v, "seed": s, "run": f"{v}/seed{s}", "status": "done", "result": res}
    rows = [row("ndvq", 0, 0.30, 2.0), row("ndvq", 1, 0.32, 2.2), row("rvq", 0, 0.50, 3.0), row("rvq", 1, 0.52, 3.0),
            {"variant": "ndvq_authors", "seed": 0, "run": "ndvq_authors/seed0", "status": "partial", "result": None}]
    t = downstream_table(rows, [_result("ndvq", 0, 0.1), _result("ndvq", 1, 0.1)])
    assert t["tts|wer"] == {"ndvq": pytest.approx([0.30, 0.32]), "rvq": pytest.approx([0.50, 0.52])}
    assert t["ar|below_entropy"]["ndvq"] == pytest.approx([math.log(20) - 2.0, math.log(21) - 2.2])
    assert "rvq" not in t["codes|entropy1"]                      # its codec results were not given
    comps = {c.label: c for c in downstream_comparisons(t, ["ndvq_authors", "ndvq", "rvq"])}
    assert set(comps) == {"TTS WER", "AR dev cross-entropy, codebook 1 (nats)"}    # context rows are not judged
    assert comps["TTS WER"].outcome == "win" and comps["TTS WER"].gain == pytest.approx(0.2)
    assert comps["AR dev cross-entropy, codebook 1 (nats)"].outcome == "win"
