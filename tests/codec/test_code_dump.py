"""Tests for the corpus code dump (codec/code_dump/)."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codec.code_dump import (CodeDump, DumpError, DumpWriter, ShardWriter, export_hf, main,
                             make_header, plan_shards, shard_index_name, shard_name)

N_Q, CB = 4, 1024
ROOT = Path(__file__).resolve().parents[2]


def _corpus(n=23, seed=0):
    rng = np.random.default_rng(seed)
    utts = {}
    for i in range(n):
        T = int(rng.integers(0, 60)) if i else 0  # one empty utterance
        utts[f"{100 + i % 3}_{i:04d}"] = dict(
            codes=rng.integers(0, CB, size=(N_Q, T)).astype(np.int64),
            speaker=str(100 + i % 3), text=f"text {i} \u00e9", phonemes=f"p{i} a b",
            duration=T / 75.0, scale=float(rng.random()))
    return utts


def _write(dump_dir, utts, plan, header=None, shards=None):
    dump = DumpWriter(dump_dir, header or make_header("abc123", 24000, 75.0, N_Q, CB))
    for i in (range(len(plan)) if shards is None else shards):
        with dump.shard(i) as w:
            for u in plan[i]:
                d = utts[u]
                w.add(u, d["codes"], speaker=d["speaker"], text=d["text"],
                      phonemes=d["phonemes"], duration=d["duration"], scale=d["scale"])
    return dump


def _plan(utts, **kw):
    return plan_shards([(u, d["codes"].shape[1]) for u, d in utts.items()], **(kw or {"utts_per_shard": 5}))


def test_write_read_round_trip(tmp_path):
    utts = _corpus()
    plan = _plan(utts)
    assert len(plan) == 5
    dump = _write(tmp_path / "d", utts, plan)
    assert dump.completed_shards() == set(range(5))
    assert dump.finalize(num_shards=5) == len(utts)
    cd = CodeDump(tmp_path / "d")
    assert len(cd) == len(utts) and sorted(cd.ids) == sorted(utts)
    assert cd.ids == [u for shard in plan for u in shard]  # sorted by shard, then offset
    assert cd.header["codec"]["checkpoint_sha256"] == "abc123" and cd.n_q == N_Q
    for i, u in enumerate(cd.ids):
        codes, meta = cd[u]
        assert codes.dtype == np.int16 and codes.shape == utts[u]["codes"].shape
        np.testing.assert_array_equal(codes, utts[u]["codes"])
        np.testing.assert_array_equal(cd[i][0], codes)
        assert meta["text"] == utts[u]["text"] and meta["speaker"] == utts[u]["speaker"]
        assert meta["phonemes"] == utts[u]["phonemes"] and meta["scale"] == utts[u]["scale"]
        assert meta["frames"] == codes.shape[1] == cd.frames[i]
        np.testing.assert_array_equal(cd.codes(u, n_q=2), utts[u]["codes"][:2])
    assert [m["id"] for _, m in cd] == cd.ids
    assert cd.speakers() == ["100", "101", "102"]
    assert sum(len(v) for v in cd.by_speaker().values()) == len(cd)
    np.testing.assert_array_equal(cd[-1][0], cd[len(cd) - 1][0])
    with pytest.raises(KeyError):
        cd["nope"]
    with pytest.raises(IndexError):
        cd[len(cd)]
    # picklable (DataLoader workers) and still readable afterwards
    cd2 = pickle.loads(pickle.dumps(cd))
    np.testing.assert_array_equal(cd2[3][0], cd[3][0])


def test_shard_file_layout_readable_with_plain_numpy(tmp_path):
    utts = _corpus(7)
    plan = _plan(utts, utts_per_shard=4)
    _write(tmp_path / "d", utts, plan).finalize()
    # the 10-line reader from docs/code_dump.md
    d = tmp_path / "d"
    header = json.loads((d / "header.json").read_text())
    index = [json.loads(line) for line in open(d / "index.jsonl")]
    for r in index:
        shard = np.load(d / f"shard-{r['shard']:05d}.npy", mmap_mode="r")
        assert shard.dtype == np.int16 and shard.shape[1] == header["codec"]["n_q"]
        codes = shard[r["offset"]:r["offset"] + r["frames"]].T
        np.testing.assert_array_equal(codes, utts[r["id"]]["codes"])
    assert header["format"] == "ndvq-code-dump" and header["version"] == 1
    assert header["codec"]["dtype"] == "int16"


def test_incomplete_shard_is_not_read(tmp_path):
    utts = _corpus()
    plan = _plan(utts)
    dump = _write(tmp_path / "d", utts, plan)
    # simulate a kill between the npy and the index of shard 2
    (tmp_path / "d" / shard_index_name(2)).unlink()
    assert dump.completed_shards() == {0, 1, 3, 4}
    assert dump.pending_shards(5, rank=0, world_size=2) == [2]
    assert dump.pending_shards(5, rank=1, world_size=2) == []
    with pytest.raises(DumpError, match=r"incomplete: \[2\]"):
        dump.finalize(num_shards=5)
    with pytest.raises(DumpError, match="not finalized"):
        CodeDump(tmp_path / "d")
    partial = CodeDump(tmp_path / "d", allow_unfinalized=True)
    assert set(partial.ids) == set(utts) - set(plan[2])
    dump.finalize()  # without num_shards: the complete ones only
    assert set(CodeDump(tmp_path / "d").ids) == set(utts) - set(plan[2])
    # resume: redo shard 2 only, then everything is there
    _write(tmp_path / "d", utts, plan, shards=dump.pending_shards(5))
    assert dump.finalize(num_shards=5) == len(utts)
    cd = CodeDump(tmp_path / "d")
    for u in plan[2]:
        np.testing.assert_array_equal(cd[u][0], utts[u]["codes"])


def test_exception_inside_shard_writes_nothing(tmp_path):
    dump = DumpWriter(tmp_path / "d", make_header("h", 24000, 75.0, N_Q, CB))
    with pytest.raises(RuntimeError):
        with dump.shard(0) as w:
            w.add("a", np.zeros((N_Q, 3), int))
            raise RuntimeError("GPU fell over")
    assert not (tmp_path / "d" / shard_name(0)).exists()
    assert dump.completed_shards() == set()
    assert not list((tmp_path / "d").glob(".*.tmp"))


def test_header_mismatch(tmp_path):
    DumpWriter(tmp_path / "d", make_header("hash-A", 24000, 75.0, N_Q, CB))
    DumpWriter(tmp_path / "d", make_header("hash-A", 24000, 75.0, N_Q, CB))  # same codec: fine
    with pytest.raises(DumpError, match="checkpoint_sha256: existing 'hash-A' vs new 'hash-B'") as e:
        DumpWriter(tmp_path / "d", make_header("hash-B", 24000, 75.0, N_Q, CB))
    assert "header.json" in str(e.value)
    with pytest.raises(DumpError, match="n_q: existing 4 vs new 8"):
        DumpWriter(tmp_path / "d", make_header("hash-A", 24000, 75.0, 8, CB))
    with pytest.raises(DumpError, match="does not fit int16"):
        DumpWriter(tmp_path / "e", make_header("h", 24000, 75.0, N_Q, 65536))


def test_add_validation(tmp_path):
    w = ShardWriter(tmp_path, 0, N_Q, CB)
    with pytest.raises(DumpError, match=r"codes must be \[n_q=4, T\]"):
        w.add("a", np.zeros((3, 5), int))
    with pytest.raises(DumpError, match="out of range"):
        w.add("a", np.full((N_Q, 5), CB))
    with pytest.raises(DumpError, match="reserved"):
        w.add("a", np.zeros((N_Q, 5), int), offset=3)
    w.add("a", np.zeros((N_Q, 5), int))
    with pytest.raises(DumpError, match="duplicate"):
        w.add("a", np.zeros((N_Q, 5), int))


def test_torch_codes_accepted(tmp_path):
    torch = pytest.importorskip("torch")
    dump = DumpWriter(tmp_path / "d", make_header("h", 24000, 75.0, N_Q, CB))
    codes = torch.randint(0, CB, (N_Q, 9))
    with dump.shard(0) as w:
        w.add("t", codes, scale=torch.tensor(0.5), speaker="s")
    dump.finalize()
    got, meta = CodeDump(tmp_path / "d")["t"]
    np.testing.assert_array_equal(got, codes.numpy())
    assert meta["scale"] == 0.5


def test_foreign_or_missing_dir(tmp_path):
    with pytest.raises(DumpError, match="no such code dump directory"):
        CodeDump(tmp_path / "missing")
    (tmp_path / "x").mkdir()
    with pytest.raises(DumpError, match="no header.json"):
        CodeDump(tmp_path / "x")
    (tmp_path / "x" / "header.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DumpError, match="not an NDVQ code dump header"):
        CodeDump(tmp_path / "x")
    h = make_header("h", 24000, 75.0, N_Q, CB)
    h["version"] = 99
    (tmp_path / "x" / "header.json").write_text(json.dumps(h))
    with pytest.raises(DumpError, match="unsupported code dump version 99"):
        CodeDump(tmp_path / "x")


def test_plan_shards_deterministic_and_complete():
    rng = np.random.default_rng(5)
    items = [(f"utt{i:05d}", int(rng.integers(1, 500))) for i in range(1000)]
    shuffled = [items[i] for i in rng.permutation(len(items))]
    for kw in ({"utts_per_shard": 64}, {"frames_per_shard": 5000}):
        plan = plan_shards(items, **kw)
        assert plan == plan_shards(shuffled, **kw)  # independent of input order
        flat = [u for s in plan for u in s]
        assert sorted(flat) == sorted(u for u, _ in items) and len(flat) == len(set(flat))
        lengths = dict(items)
        for s in plan:
            ls = [lengths[u] for u in s]
            assert ls == sorted(ls, reverse=True)  # length-sorted within shard
    assert all(len(s) <= 64 for s in plan_shards(items, utts_per_shard=64))
    for s in plan_shards(items, frames_per_shard=5000):
        assert sum(dict(items)[u] for u in s) <= 5000
    assert plan_shards([("a", 10), ("b", 1)], frames_per_shard=5) == [["a"], ["b"]]
    with pytest.raises(ValueError, match="duplicate"):
        plan_shards([("a", 1), ("a", 2)], utts_per_shard=2)
    with pytest.raises(ValueError):
        plan_shards(items, utts_per_shard=3, frames_per_shard=3)


def test_plan_stored_and_checked(tmp_path):
    dump = DumpWriter(tmp_path / "d", make_header("h", 24000, 75.0, N_Q, CB))
    plan = plan_shards([("a", 1), ("b", 2), ("c", 3)], utts_per_shard=2)
    assert dump.set_plan(plan) == plan and dump.set_plan(plan) == plan
    assert dump.load_plan() == plan
    with pytest.raises(DumpError, match="plan differs"):
        dump.set_plan(plan_shards([("a", 1), ("b", 2)], utts_per_shard=2))


def test_export_hf_round_trip(tmp_path):
    datasets = pytest.importorskip("datasets")
    utts = _corpus(9)
    _write(tmp_path / "d", utts, _plan(utts, utts_per_shard=4)).finalize()
    export_hf(tmp_path / "d", tmp_path / "hf")
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == len(utts)
    assert ds.features["codes"].feature.feature.dtype == "int16"
    for row in ds:
        ref = utts[row["id"]]
        codes = np.asarray(row["codes"], dtype=np.int16).reshape(N_Q, -1)
        np.testing.assert_array_equal(codes, ref["codes"])
        assert row["text"] == ref["text"] and row["speaker"] == ref["speaker"]
        assert row["frames"] == ref["codes"].shape[1]
        assert json.loads(row["meta"])["scale"] == ref["scale"]
    ds_np = ds.with_format("numpy")
    i = [r for r in range(len(ds)) if ds[r]["frames"] > 0][0]
    np.testing.assert_array_equal(np.stack(ds_np[i]["codes"]), utts[ds[i]["id"]]["codes"])
    export_hf(tmp_path / "d", tmp_path / "hf2", n_q=2)
    row = datasets.load_from_disk(str(tmp_path / "hf2"))[i]
    np.testing.assert_array_equal(np.asarray(row["codes"]).reshape(2, -1), utts[row["id"]]["codes"][:2])


def test_cli(tmp_path, capsys):
    utts = _corpus(6)
    plan = _plan(utts, utts_per_shard=4)
    _write(tmp_path / "d", utts, plan)
    assert main(["info", str(tmp_path / "d")]) == 1  # not finalized yet: clear error, exit 1
    assert "not finalized" in capsys.readouterr().err
    assert main(["finalize", str(tmp_path / "d"), "--num-shards", "2"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "d")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["utterances"] == 6 and info["shards"] == 2 and info["codec"]["n_q"] == N_Q
    r = subprocess.run([sys.executable, "-m", "codec.code_dump", "info", str(tmp_path / "d")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["frames"] == sum(
        d["codes"].shape[1] for d in utts.values())


def test_docs_numpy_reader_snippet_works(tmp_path):
    """The 'numpy only' reader in docs/code_dump.md runs and returns the written codes."""
    doc = (ROOT / "docs" / "code_dump.md").read_text()
    section = doc.split("## Reading with numpy only", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(snippet.strip().splitlines()) <= 12
    utts = _corpus(5)
    _write(tmp_path / "d", utts, _plan(utts, utts_per_shard=2)).finalize()
    ns: dict = {}
    exec(snippet.replace('"data/codes"', repr(str(tmp_path / "d"))), ns)
    for r in ns["index"]:
        np.testing.assert_array_equal(ns["codes"](r), utts[r["id"]]["codes"])
        np.testing.assert_array_equal(ns["codes"](r, 1), utts[r["id"]]["codes"][:1])


def test_export_hf_of_an_empty_dump_is_one_line(tmp_path, capsys):
    """export-hf on an empty dump (every utterance skipped) was a traceback."""
    pytest.importorskip("datasets")
    dump = DumpWriter(tmp_path / "d", make_header("abc123", 24000, 75.0, N_Q, CB))
    dump.set_plan([[]])
    with dump.shard(0):
        pass
    dump.finalize(1)
    assert main(["export-hf", str(tmp_path / "d"), str(tmp_path / "hf")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no utterance: nothing to export" in err[0]
    assert not (tmp_path / "hf").exists()
