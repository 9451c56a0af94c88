"""core.io: atomic writes leave nothing behind on failure and publish ordinary permissions."""
import importlib
import os
import stat

import numpy as np
import pytest

import core.io as fileio
from core.io import atomic_path, atomic_write_text, read_jsonl, write_jsonl


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_published_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        importlib.reload(fileio)                        # the mode is read from the umask at import
        fileio.atomic_write_text(tmp_path / "a.txt", "x")
        with open(tmp_path / "plain.txt", "w") as fh:   # what an ordinary open() gives
            fh.write("x")
        assert _mode(tmp_path / "a.txt") == _mode(tmp_path / "plain.txt") == 0o644
    finally:
        os.umask(old)
        importlib.reload(fileio)


def test_code_outputs_are_readable_by_others(tmp_path):
    from codec.bitstream import CodeFile, write_ndvq
    from codec.code_dump import DumpWriter, make_header
    if fileio._FILE_MODE & 0o044 != 0o044:
        pytest.skip("this umask hides new files from others")
    write_ndvq(tmp_path / "x.ndvq", CodeFile(codes=np.zeros((2, 5), np.int64), sample_rate=24000,
                                              frame_rate=75.0, codebook_size=1024, scale=1.0, num_samples=1600))
    dump = DumpWriter(tmp_path / "dump", make_header("sha", 24000, 75.0, n_q=2, codebook_size=1024))
    with dump.shard(0) as w:
        w.add("u", np.zeros((2, 5), np.int64))
    dump.finalize(num_shards=1)
    for p in [tmp_path / "x.ndvq", *sorted((tmp_path / "dump").iterdir())]:
        assert _mode(p) & 0o044 == 0o044, f"{p.name}: mode {oct(_mode(p))}"


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "rows.jsonl"
    write_jsonl(target, [{"a": 1}])
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert read_jsonl(target) == [{"a": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]
    atomic_write_text(target, '{"a": 2}\n')
    assert read_jsonl(target) == [{"a": 2}]
