"""tts.align: features framed like the codec, CTC Viterbi + token durations, a tiny learning test,
the durations file round trip and the model directory round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tts.align.features import FeatureConfig, fit_frames, log_mel, num_frames
from tts.align.model import CTCRecognizer, RecognizerConfig
from tts.align.phones import PhoneTable, default_phones
from tts.align.recognizer import (PhonemeRecognizer, edit_distance, greedy_decode, load_recognizer,
                                  phoneme_error_rate, save_recognizer)
from tts.align.viterbi import (AlignmentError, ctc_feasible, forced_align, forced_align_batch,
                               token_durations)

SR, FR = 16_000, 50.0
HOP = 320


def peaked(path: list[int], V: int = 5, p: float = 0.9) -> np.ndarray:
    """log-probs [T, V] whose best label at frame t is path[t]."""
    lp = np.full((len(path), V), (1 - p) / (V - 1))
    lp[np.arange(len(path)), path] = p
    return np.log(lp)


# ---------------------------------------------------------------------------------------- features
@pytest.mark.parametrize("n", [1, 319, 320, 321, 16_000, 16_001, 47_999])
def test_feature_frames_are_the_codecs(n):
    cfg = FeatureConfig(sample_rate=SR, frame_rate=FR, n_mels=40)
    f = log_mel(np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1, cfg)
    assert f.shape == (40, num_frames(n, HOP)) == (40, -(-n // HOP))
    assert np.isfinite(f).all()


def test_feature_frame_t_sees_samples_of_code_frame_t():
    """A click in code frame 7's span is loudest in feature frame 7 (windows centred on each span)."""
    cfg = FeatureConfig(sample_rate=SR, frame_rate=FR, n_mels=40)
    wav = np.zeros(20 * HOP, np.float32)
    wav[7 * HOP + 150: 7 * HOP + 170] = 1.0
    assert int(log_mel(wav, cfg).mean(0).argmax()) == 7


def test_fit_frames_tolerance():
    f = np.zeros((4, 10), np.float32)
    assert fit_frames(f, 11).shape == (4, 11) and fit_frames(f, 9).shape == (4, 9)
    with pytest.raises(ValueError, match="code frames"):
        fit_frames(f, 12)
    with pytest.raises(ValueError, match="whole number"):
        FeatureConfig(sample_rate=16_000, frame_rate=75.0).hop


# ----------------------------------------------------------------------------------------- viterbi
def test_viterbi_known_path():
    path = [0, 1, 1, 0, 2, 2, 2, 0, 0, 3]
    al = forced_align(peaked(path), [1, 2, 3])
    assert al.frame_targets.tolist() == [-1, 0, 0, -1, 1, 1, 1, -1, -1, 2]
    assert al.logp == pytest.approx(np.log(0.9))


def test_viterbi_repeated_label_needs_a_blank():
    # labels [1, 1]: the path must pass through a blank between the two 1s
    al = forced_align(peaked([1, 1, 1, 1]), [1, 1])
    ft = al.frame_targets.tolist()
    assert ft[0] == 0 and ft[-1] == 1 and -1 in ft and sorted(set(ft)) == [-1, 0, 1]
    assert ctc_feasible([1, 1], 3) and not ctc_feasible([1, 1], 2)


def test_viterbi_prefers_the_better_segmentation():
    # frames 0-2 favour label 1, frames 3-5 favour label 2: the boundary lands at 3
    lp = np.log(np.array([[0.05, 0.9, 0.05]] * 3 + [[0.05, 0.05, 0.9]] * 3))
    assert forced_align(lp, [1, 2]).frame_targets.tolist() == [0, 0, 0, 1, 1, 1]


def test_viterbi_batch_equals_single_and_reports_infeasible():
    rng = np.random.default_rng(0)
    items = [(17, [1, 2, 3, 2]), (9, [4, 4, 1]), (3, [1, 2, 3, 4]), (12, [])]
    T = max(t for t, _ in items)
    lp = np.log(rng.dirichlet(np.ones(6), size=(len(items), T)))
    got = forced_align_batch(lp, [t for t, _ in items], [tg for _, tg in items])
    for b, (t, tg) in enumerate(items[:2]):
        one = forced_align(lp[b, :t], tg)
        assert got[b].frame_targets.tolist() == one.frame_targets.tolist()
        assert got[b].score == pytest.approx(one.score)
        assert len(got[b].frame_targets) == t
    assert got[2] is None and got[3] is None            # 4 phones in 3 frames; no phones
    with pytest.raises(AttributeError):
        forced_align(lp[2, :3], [1, 2, 3, 4]).frame_targets


def test_viterbi_blank_penalty_shrinks_blanks():
    lp = peaked([0, 1, 0, 0, 0, 2, 0], p=0.6)
    plain = forced_align(lp, [1, 2]).frame_targets
    pen = forced_align(lp, [1, 2], blank_penalty=5.0).frame_targets
    assert (pen < 0).sum() < (plain < 0).sum()


# ---------------------------------------------------------------------------------------- durations
def test_durations_rules():
    #          0    1    2    3    4    5    6    7    8    9
    tokens = ["h", "ˈ", "ɛ", "l", ",", "_", "w", "ɜː", "d", "."]   # phones: h ɛ l w ɜː d (targets 0..5)
    ft = [-1, -1, 0, 0, -1, -1, -1, 1, 2, -1, -1, -1, -1, 3, 4, -1, -1, -1, 5, -1, -1]
    d = token_durations(tokens, np.array(ft))
    assert sum(d) == len(ft)
    assert d[1] == 0                          # stress mark
    assert d[0] == 2 + 2 + 2                  # leading blanks + its frames + first half of the h..ɛ gap
    assert d[2] == 1 + 1                      # second half of the gap (3 blanks: 2 left, 1 right) + its frame
    assert d[4] == 4 and d[5] == 0            # the pause between "l" and "w" goes to the comma, not "_"
    assert d[6] == 1 and d[7] == 1 + 2        # w, ɜː (adjacent); the 3 blanks between ɜː and d: 2 to ɜː ...
    assert d[8] == 1 + 1 and d[9] == 2        # ... 1 to d; trailing blanks go to the final "."


def test_durations_separator_and_no_trailing_punctuation():
    tokens = ["ˈ", "a", "_", "b"]
    d = token_durations(tokens, np.array([0, -1, -1, 1, -1, -1]))
    assert d == [0, 1, 2, 3]                  # the gap to "_", trailing blanks to the last phone
    d = token_durations(["a", "b"], np.array([-1, 0, -1, -1, -1, 1]))
    assert d == [1 + 1 + 2, 1 + 1]            # leading blank to the first token; 3-blank gap split 2/1


def test_durations_leading_quote_takes_leading_silence():
    d = token_durations(['"', "a", "ˈ", "b", "?", '"'], np.array([-1, -1, 0, 1, -1]))
    assert d == [2, 1, 0, 1, 0, 1]            # trailing blank: the LAST non-phone after the last phone
    assert token_durations(['"', "a", "b", "?", '"'], np.array([0, 1, -1]))[-1] == 1


def test_durations_errors():
    with pytest.raises(AlignmentError):
        token_durations(["_", "."], np.array([-1, -1]))
    with pytest.raises(ValueError):
        token_durations(["a"], np.array([0, 1]))


def test_durations_posterior_split():
    # blanks everywhere but one spike per phone; the posteriors of a and b tell where the boundary is
    T = 8
    lp = np.full((T, 4), np.log(1e-9))
    lp[:, 0] = np.log(0.9)
    lp[:5, 1] = np.log(0.09)                  # "a" is second best on frames 0-4, "b" on 5-7
    lp[5:, 2] = np.log(0.09)
    ft = np.array([0, -1, -1, -1, -1, -1, -1, 1])
    assert token_durations(["a", "b"], ft) == [4, 4]                              # middle
    assert token_durations(["a", "b"], ft, lp, [1, 2]) == [5, 3]                  # posterior
    # with a separator: the run is a pause only where the blank wins by more than e^penalty
    lp[2:4, 1:] = np.log(1e-12)               # frames 2-3: silence
    # frame 4 still favours "a", but A | pause | B is contiguous: it joins the pause, not "b"
    assert token_durations(["a", "_", "b"], ft, lp, [1, 2], pause_penalty=5.0) == [2, 3, 3]
    assert token_durations(["a", "_", "b"], ft, lp, [1, 2], pause_penalty=40.0)[1] == 0
    assert token_durations(["a", "_", "b"], ft) == [1, 6, 1]                      # middle rule: all to "_"


# -------------------------------------------------------------------------------------------- PER
def test_phoneme_error_rate():
    assert edit_distance("abc", "abd") == 1 and edit_distance("", "ab") == 2
    assert phoneme_error_rate([["a", "b", "c", "d"]], [["a", "c", "d", "e"]]) == pytest.approx(0.5)
    # strings are phonemes fields: stress, separators and punctuation do not count
    assert phoneme_error_rate(["h ˈ ɛ l _ oʊ ."], ["h ɛ l oʊ"]) == 0.0
    with pytest.raises(ValueError):
        phoneme_error_rate([["a"]], [])


# ------------------------------------------------------------------------ a tiny learning test
PH = ("a", "b", "d", "e")
FREQS = (300.0, 800.0, 1600.0, 3200.0)


def tone_utterance(rng: np.random.Generator, n: int = 5) -> tuple[np.ndarray, list[int], list[str]]:
    """Silence, then n 'phones' (sine tones of random 3-7 frame durations, no two alike in a row, short
    silences between some), then silence. -> (wav, true start frame of each phone, phones)."""
    seq, prev = [], -1
    for _ in range(n):
        k = int(rng.choice([i for i in range(len(PH)) if i != prev]))
        seq.append(k)
        prev = k
    parts, starts, t = [np.zeros(int(rng.integers(2, 5)) * HOP, np.float32)], [], 0
    t = len(parts[0]) // HOP
    for k in seq:
        if rng.random() < 0.3:
            parts.append(np.zeros(2 * HOP, np.float32))
            t += 2
        d = int(rng.integers(3, 8))
        starts.append(t)
        x = np.arange(d * HOP) / SR
        parts.append((0.3 * np.sin(2 * np.pi * FREQS[k] * x)).astype(np.float32))
        t += d
    parts.append(np.zeros(int(rng.integers(2, 5)) * HOP, np.float32))
    return np.concatenate(parts), starts, [PH[k] for k in seq]


def test_tiny_recognizer_learns_tones(one_thread):
    rng = np.random.default_rng(0)
    fcfg = FeatureConfig(sample_rate=SR, frame_rate=FR, n_mels=32)
    cfg = RecognizerConfig(n_mels=32, phones=PH, channels=48, n_blocks=2, expansion=2, subsample=1,
                           dropout=0.0, freq_masks=0)
    table = PhoneTable(PH)
    torch.manual_seed(0)
    model = CTCRecognizer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def batch(n):
        utts = [tone_utterance(rng) for _ in range(n)]
        feats = [log_mel(w, fcfg) for w, _, _ in utts]
        L = torch.tensor([f.shape[1] for f in feats])
        x = torch.zeros(n, 32, int(L.max()))
        for i, f in enumerate(feats):
            x[i, :, :f.shape[1]] = torch.from_numpy(f)
        tg = [table.encode(p) for _, _, p in utts]
        return x, L, tg, utts

    for _ in range(60):
        x, L, tg, _ = batch(8)
        lp = model(x, L)
        loss = torch.nn.functional.ctc_loss(lp.transpose(0, 1), torch.tensor(sum(tg, [])), L,
                                            torch.tensor([len(t) for t in tg]), zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, L, tg, utts = batch(16)
    with torch.no_grad():
        lp = model(x, L)
    hyps = [table.decode(ids) for ids in greedy_decode(lp, L)]
    assert phoneme_error_rate([p for _, _, p in utts], hyps) < 0.1
    # alignment: each phone's aligned span covers its true start within 2 frames
    errs = []
    for b, (_, starts, phones) in enumerate(utts):
        lpb = lp[b, :int(L[b])].numpy()
        al = forced_align(lpb, tg[b])
        toks = [t for p in phones for t in ("_", p)][1:]          # phones with separators between
        dur = token_durations(toks, al.frame_targets, lpb, tg[b])
        pos = np.cumsum([0] + dur)[::2][:len(phones)]             # start frame of each phone token
        errs += [abs(int(a) - s) for a, s in zip(pos[1:], starts[1:])]
    assert np.median(errs) <= 1 and np.mean(np.array(errs) <= 2) > 0.8


# -------------------------------------------------------------------------- model dir / durations file
def small_model(seed: int = 0) -> CTCRecognizer:
    torch.manual_seed(seed)
    return CTCRecognizer(RecognizerConfig(n_mels=32, channels=32, n_blocks=1)).eval()


def test_model_dir_round_trip(tmp_path):
    model = small_model()
    fcfg = FeatureConfig(sample_rate=SR, frame_rate=FR, n_mels=32)
    save_recognizer(model, fcfg, tmp_path / "m", training={"steps": 3})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded, f2, rec = load_recognizer(tmp_path / "m")
    assert f2 == fcfg and loaded.config == model.config and rec["training"] == {"steps": 3}
    assert loaded.config.phones == default_phones()
    x, L = torch.randn(2, 32, 40), torch.tensor([40, 23])
    with torch.no_grad():
        assert torch.equal(model(x, L), loaded(x, L))
    rec = PhonemeRecognizer.from_pretrained(tmp_path / "m")
    wav = np.random.default_rng(0).standard_normal(24_000).astype(np.float32) * 0.1
    out = rec.transcribe(wav, 24_000)
    assert isinstance(out, list) and all(p in default_phones() for p in out)
    assert rec.transcribe_batch([wav, wav[:8000]], 24_000)[0] == out     # padding does not change an item
    (tmp_path / "m" / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="format"):
        load_recognizer(tmp_path / "m")


def test_durations_file_round_trip(tmp_path, one_thread):
    from codec.code_dump import DumpWriter, make_header
    from data_prep.audio import save_audio
    from tts.align.durations import meta_path, read_durations, run

    rng = np.random.default_rng(1)
    dump_dir, rows, man = tmp_path / "codes" / "dev", [], []
    writer = DumpWriter(dump_dir, make_header("b" * 64, SR, FR, n_q=2, codebook_size=8,
                                              extra={"manifests": [str(tmp_path / "m.jsonl")]}))
    writer.set_plan([["u0", "u1", "u2"]])
    phon = {"u0": "h ˈ ɛ l oʊ _ w ˈ ɜː l d .", "u1": "ˈ a _ b ,", "u2": "a b d e a b d e a b d e"}
    with writer.shard(0) as w:
        for uid, n in (("u0", 24_000), ("u1", 8_000), ("u2", 3_000)):   # u2: 12 phones in 10 frames
            wav, _, _ = tone_utterance(rng)
            wav = np.resize(wav, n)
            save_audio(tmp_path / f"{uid}.wav", wav, SR)
            T = num_frames(n, HOP)
            w.add(uid, np.zeros((2, T), np.int16), speaker="s", text="x", phonemes=phon[uid])
            man.append({"id": uid, "path": str(tmp_path / f"{uid}.wav"), "duration": n / SR})
            rows.append((uid, T))
    writer.finalize(1)
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in man))
    model = CTCRecognizer(RecognizerConfig(n_mels=80, channels=32, n_blocks=1))
    save_recognizer(model, FeatureConfig(sample_rate=SR, frame_rate=FR), tmp_path / "aligner")
    out = tmp_path / "durations" / "dev.jsonl"
    meta = run(str(tmp_path / "aligner"), str(out), dump=str(dump_dir))
    got = read_durations(out)
    assert list(got) == ["u0", "u1"]
    for uid, T in rows[:2]:
        assert got[uid]["frames"] == T and sum(got[uid]["durations"]) == T
        assert len(got[uid]["durations"]) == len(phon[uid].split())
        assert np.isfinite(got[uid]["logp"]) and got[uid]["logp"] <= 0
    assert got["u0"]["durations"][1] == 0 and got["u1"]["durations"][0] == 0      # stress marks
    # the recognizer aligns one recording as stage 4 does (tts.evaluate's row for a NAR that reads durations)
    from data_prep.audio import load_audio
    rec = PhonemeRecognizer.from_pretrained(tmp_path / "aligner")
    for uid, T in rows:
        wav, _ = load_audio(tmp_path / f"{uid}.wav", sample_rate=SR)
        assert rec.durations(wav, SR, phon[uid].split(), T) == (got[uid]["durations"] if uid in got else None)
    assert rec.durations(wav, SR, phon["u0"].split(), 40) is None                  # audio of another length
    m = json.loads(meta_path(out).read_text())
    assert m == meta and m["format"] == "ndvq-durations" and m["version"] == 1
    assert m["aligned"] == 2 and m["skipped"] == {"infeasible": 1} and m["skipped_ids"] == {"infeasible": ["u2"]}
    assert m["frame_rate"] == FR and len(m["aligner_sha256"]) == 64 and m["codec_sha256"] == "b" * 64
    # a dump of another frame rate is refused, naming both
    save_recognizer(model, FeatureConfig(sample_rate=24_000, frame_rate=75.0), tmp_path / "a24")
    with pytest.raises(ValueError, match="24000 Hz"):
        run(str(tmp_path / "a24"), str(tmp_path / "x.jsonl"), dump=str(dump_dir))
