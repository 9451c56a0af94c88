"""codec.tokenize: manifest -> code dump; resumable, corrupt audio skipped, reader round trip."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.code_dump import CodeDump
from codec.tokenize import main as tokenize_main, make_batches
from tests.codec.helpers_inference import noise, one_thread, tiny_codec  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tok")
    codec = tiny_codec(seed=6)
    codec.save_pretrained(tmp / "model")
    rows, phon = [], []
    for i, n in enumerate([4000, 9000, 16000, 7000, 12000, 3000, 10000]):
        spk = f"{100 + i % 2}"
        uid = f"{spk}_1_{i:06d}"
        p = tmp / "wav" / f"{uid}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sr = 16000 if i != 3 else 22050               # one file needs resampling
        x = noise(n, seed=i).numpy()
        if sr != 16000:
            import soxr
            x = soxr.resample(x, 16000, sr)
        sf.write(p, x, sr)
        rows.append({"id": uid, "path": str(p), "duration": len(x) / sr, "sr": sr, "speaker": spk,
                     "chapter": "1", "text_norm": f"text {i}", "text_orig": f"Text {i}."})
        phon.append({"id": uid, "phonemes": f"t e k s t {i}"})
    bad = tmp / "wav" / "101_1_999999.wav"
    bad.write_bytes(b"RIFF\x00\x01garbage" * 10)      # corrupt audio: skipped, reported
    rows.append({"id": bad.stem, "path": str(bad), "duration": 0.5, "sr": 16000, "speaker": "101",
                 "chapter": "1", "text_norm": "bad", "text_orig": "Bad."})
    (tmp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in phon))
    return tmp, codec, rows


def run(tmp, out, *extra):
    return tokenize_main(["--manifest", str(tmp / "m.jsonl"), "--phonemes", str(tmp / "p.jsonl"),
                          "--model", str(tmp / "model"), "--out", str(out), "--n-q", "3",
                          "--utts-per-shard", "2", "--batch-seconds", "1.5", "--no-progress", *extra])


def shard_state(out):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(out.glob("shard-*"))}


def test_full_run_and_reader_round_trip(corpus):
    tmp, codec, rows = corpus
    out = tmp / "full"
    assert run(tmp, out) == 0
    dump = CodeDump(out)
    assert len(dump) == 7 and dump.n_q == 3 and dump.codebook_size == 32
    h = dump.header["codec"]
    assert h["checkpoint_sha256"] == hashlib.sha256((tmp / "model" / "model.safetensors").read_bytes()).hexdigest()
    assert h["sample_rate"] == 16000 and h["frame_rate"] == 50.0
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert [s["id"] for s in skipped] == ["101_1_999999"] and skipped[0]["error"]
    from data_prep.audio import load_audio
    for r in rows[:7]:
        codes, meta = dump[r["id"]]
        wav, _ = load_audio(r["path"], sample_rate=16000)
        ref = codec.encode(wav, n_q=3).item_codes(0).numpy()
        assert codes.dtype == np.int16 and np.array_equal(codes.astype(np.int64), ref), r["id"]
        assert meta["speaker"] == r["speaker"] and meta["text"] == r["text_norm"]
        assert meta["phonemes"].startswith("t e k s t") and meta["frames"] == ref.shape[1]
        assert {"shard", "offset"} <= set(meta)


def test_worker_threads_write_the_same_dump(corpus):
    """Utterances encoded by several worker threads (one intra-op thread each) give byte-identical shards."""
    tmp, _, _ = corpus
    threads = torch.get_num_threads()
    assert run(tmp, tmp / "w1", "--workers", "1") == 0
    assert run(tmp, tmp / "w3", "--workers", "3") == 0
    assert torch.get_num_threads() == threads            # the caller's thread setting is restored
    names = sorted(p.name for p in (tmp / "w1").glob("shard-*"))
    assert names and names == sorted(p.name for p in (tmp / "w3").glob("shard-*"))
    for name in names + ["index.jsonl", "skipped.jsonl"]:
        assert (tmp / "w1" / name).read_bytes() == (tmp / "w3" / name).read_bytes(), name


def test_resume_after_interruption(corpus):
    tmp, _, _ = corpus
    ref_out, out = tmp / "ref", tmp / "resumed"
    assert run(tmp, ref_out) == 0
    assert run(tmp, out, "--max-shards", "1") == 0            # a job stopped after its first shard
    assert not (out / "index.jsonl").exists()
    first = shard_state(out)
    assert set(first) == {"shard-00000.npy", "shard-00000.index.jsonl", "shard-00000.skipped.jsonl"}
    (out / "shard-00001.npy").write_bytes(b"half-written garbage")   # a crash mid-shard: no index file
    assert run(tmp, out) == 0
    after = shard_state(out)
    for name, state in first.items():
        assert after[name] == state, f"{name} was redone"
    for name in ("shard-00001.npy", "shard-00002.npy", "shard-00003.npy", "index.jsonl"):
        assert (out / name).read_bytes() == (ref_out / name).read_bytes(), name
    a, b = CodeDump(out), CodeDump(ref_out)
    assert a.ids == b.ids and all(np.array_equal(a.codes(i), b.codes(i)) for i in range(len(a)))


def test_other_codec_cannot_write_same_dump(corpus):
    tmp, _, _ = corpus
    out = tmp / "mixed"
    assert run(tmp, out, "--max-shards", "1") == 0
    tiny_codec(seed=9).save_pretrained(tmp / "model2")
    rc = tokenize_main(["--manifest", str(tmp / "m.jsonl"), "--model", str(tmp / "model2"), "--out", str(out),
                        "--n-q", "3", "--utts-per-shard", "2", "--no-progress"])
    assert rc == 1


def test_make_batches():
    d = {"a": 3.0, "b": 2.0, "c": 2.0, "d": 0.5}
    assert make_batches(["a", "b", "c", "d"], d, max_seconds=6.0, max_items=8) == [["a", "b"], ["c", "d"]]
    assert make_batches(["a", "b", "c", "d"], d, max_seconds=100, max_items=3) == [["a", "b", "c"], ["d"]]


@pytest.mark.slow
def test_two_ranks_with_accelerate(corpus):
    tmp, _, _ = corpus
    out = tmp / "two"
    env = dict(os.environ, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                        "-m", "codec.tokenize", "--manifest", str(tmp / "m.jsonl"), "--model", str(tmp / "model"),
                        "--out", str(out), "--n-q", "3", "--utts-per-shard", "2", "--no-progress",
                        "--phonemes", str(tmp / "p.jsonl"), "--batch-seconds", "1.5"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summaries = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert sorted((s["rank"], s["world_size"]) for s in summaries) == [(0, 2), (1, 2)]
    assert sum(s["shards_done"] for s in summaries) == 4
    assert run(tmp, tmp / "one") == 0
    assert (out / "index.jsonl").read_bytes() == (tmp / "one" / "index.jsonl").read_bytes()


def dump_bytes(out):
    """Every file of a dump, header.json without its creation time and manifest list."""
    files = {}
    for p in sorted(out.iterdir()):
        data = p.read_bytes()
        if p.name == "header.json":
            h = json.loads(data)
            h.pop("created")
            h["extra"].pop("manifests")
            data = json.dumps(h, sort_keys=True).encode()
        files[p.name] = data
    return files


@pytest.fixture(scope="module")
def two_subsets(corpus):
    """The corpus split in two manifests (the corrupt file in the second), as a recipe's subsets."""
    tmp, _, rows = corpus
    lines = (tmp / "m.jsonl").read_text().splitlines(keepends=True)
    (tmp / "a.jsonl").write_text("".join(lines[:4]))
    (tmp / "b.jsonl").write_text("".join(lines[4:]))
    return tmp


def run_jobs(tmp, outs, manifests, *extra):
    """One tokenize run writing len(outs) dumps (--out/--manifest/--phonemes paired in order)."""
    args = ["--model", str(tmp / "model"), "--n-q", "3", "--utts-per-shard", "2", "--batch-seconds", "1.5",
            "--no-progress"]
    for o, m in zip(outs, manifests):
        args += ["--out", str(o), "--manifest", str(m), "--phonemes", str(tmp / "p.jsonl")]
    return tokenize_main([*args, *extra])


def test_several_dumps_in_one_run_equal_separate_runs(two_subsets):
    """One run writing two dumps (workers running across the dump boundary) = two runs of one dump each,
    byte for byte, codes equal to one-by-one encoding (test_full_run_and_reader_round_trip)."""
    tmp = two_subsets
    a, b = tmp / "a.jsonl", tmp / "b.jsonl"
    assert run_jobs(tmp, [tmp / "sep_a"], [a], "--workers", "1") == 0
    assert run_jobs(tmp, [tmp / "sep_b"], [b], "--workers", "1") == 0
    assert run_jobs(tmp, [tmp / "joint_a", tmp / "joint_b"], [a, b], "--workers", "2") == 0
    for name in ("a", "b"):
        assert dump_bytes(tmp / f"joint_{name}") == dump_bytes(tmp / f"sep_{name}"), name
        header = json.loads((tmp / f"joint_{name}" / "header.json").read_text())
        assert header["extra"]["manifests"] == [str(tmp / f"{name}.jsonl")]     # its own manifest only
    assert len(CodeDump(tmp / "joint_a")) == 4 and len(CodeDump(tmp / "joint_b")) == 3
    skipped = [json.loads(line) for line in (tmp / "joint_b" / "skipped.jsonl").read_text().splitlines()]
    assert [s["id"] for s in skipped] == ["101_1_999999"]
    assert (tmp / "joint_a" / "skipped.jsonl").read_text() == ""


def test_several_dumps_resume_and_skip_finished(two_subsets):
    """--max-shards counts over all dumps; a rerun leaves finished dumps' shards alone and completes the rest."""
    tmp = two_subsets
    outs, mans = [tmp / "res_a", tmp / "res_b"], [tmp / "a.jsonl", tmp / "b.jsonl"]
    assert run_jobs(tmp, outs, mans, "--max-shards", "3") == 0       # a: 2 shards, b: 2 shards
    assert (outs[0] / "index.jsonl").is_file() and not (outs[1] / "index.jsonl").exists()
    first_a, first_b = shard_state(outs[0]), shard_state(outs[1])
    assert set(first_b) == {"shard-00000.npy", "shard-00000.index.jsonl", "shard-00000.skipped.jsonl"}
    assert run_jobs(tmp, outs, mans) == 0
    assert shard_state(outs[0]) == first_a
    after_b = shard_state(outs[1])
    assert all(after_b[k] == v for k, v in first_b.items()) and len(after_b) == 6
    assert run_jobs(tmp, [tmp / "ref_b"], [mans[1]]) == 0
    assert dump_bytes(outs[1]) == dump_bytes(tmp / "ref_b")


def test_several_dumps_bad_arguments(two_subsets, capsys):
    tmp = two_subsets
    base = ["--model", str(tmp / "model"), "--no-progress"]
    assert tokenize_main([*base, "--out", str(tmp / "x"), "--out", str(tmp / "y"),
                          "--manifest", str(tmp / "a.jsonl")]) == 1
    assert "2 --out need as many --manifest" in capsys.readouterr().err
    assert tokenize_main([*base, "--out", str(tmp / "x"), "--out", str(tmp / "x"),
                          "--manifest", str(tmp / "a.jsonl"), "--manifest", str(tmp / "b.jsonl")]) == 1
    assert "same dump directory" in capsys.readouterr().err


def test_default_workers_use_the_cores_not_omp_num_threads(corpus):
    """accelerate launch exports OMP_NUM_THREADS=1 (one intra-op thread, as the one_thread fixture sets):
    the default must still use every core, shared among the machine's ranks."""
    from codec.tokenize import default_workers, tokenize
    tmp, _, _ = corpus
    cores = len(os.sched_getaffinity(0))
    assert torch.get_num_threads() == 1
    assert default_workers(True, 1) == cores and default_workers(True, cores) == 1
    assert default_workers(True, 4 * cores) == 1 and default_workers(False, 1) == 1
    s = tokenize([str(tmp / "m.jsonl")], str(tmp / "model"), str(tmp / "dw"), n_q=3, utts_per_shard=4,
                 progress=False)
    assert s["workers"] == cores and s["utterances"] == 7 and s["total_utterances"] == 7


def _manifest_elsewhere(tmp, rows, name, transform):
    sub = tmp / name
    sub.mkdir(exist_ok=True)
    (sub / "m.jsonl").write_text("".join(json.dumps(transform(r)) + "\n" for r in rows))
    return sub / "m.jsonl"


def test_nothing_to_tokenize_is_an_error_before_any_work(corpus, capsys):
    """A manifest copied elsewhere (its relative paths no longer resolve) made an empty
    dump and exit 0; now one line before the codec encodes anything, and no dump."""
    tmp, _, rows = corpus
    man = _manifest_elsewhere(tmp, rows, "moved", lambda r: {**r, "path": f"wav_gone/{Path(r['path']).name}"})
    out = tmp / "moved" / "codes"
    code = tokenize_main(["--manifest", str(man), "--model", str(tmp / "model"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "none of the 8 audio files exists (first: " in err and "nothing to tokenize" in err
    assert not out.exists()


def test_every_utterance_skipped_is_not_exit_0(corpus, capsys):
    tmp, _, rows = corpus
    bad = tmp / "wav" / "101_1_999999.wav"                            # the corpus's corrupt file, for every row
    man = _manifest_elsewhere(tmp, rows[:2], "allbad", lambda r: {**r, "path": str(bad)})
    out = tmp / "allbad" / "codes"
    code = tokenize_main(["--manifest", str(man), "--model", str(tmp / "model"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "no utterance could be encoded into" in err and "skipped.jsonl" in err
