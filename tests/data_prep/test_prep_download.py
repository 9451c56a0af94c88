"""data_prep.download against a local HTTP server that honours Range and can drop connections."""
from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.download import (SENTINEL, Checksum, ChecksumError, DownloadError, UnsafeArchiveError,
                                download_file, download_subset, extract_subset, main)

SUBSET = "dev-clean"


def _wav_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, 12000).astype(np.float32)  # incompressible
    sf.write(buf, noise, 24000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _make_tarball(subset: str = SUBSET, extra: dict[str, bytes] | None = None) -> bytes:
    files = {"LibriTTS/README.txt": b"LibriTTS test archive\n"}
    for i, (spk, chap) in enumerate([("19", "198"), ("19", "198"), ("26", "495")]):
        utt = f"{spk}_{chap}_000000_00000{i}"
        base = f"LibriTTS/{subset}/{spk}/{chap}/{utt}"
        files[base + ".wav"] = _wav_bytes(i)
        files[base + ".normalized.txt"] = f"Sentence number {i}.".encode()
        files[base + ".original.txt"] = f"Sentence number {i}.".encode()
    files.update(extra or {})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if srv.cuts_left > 0:  # drop the connection part-way through
            srv.cuts_left -= 1
            self.wfile.write(body[: srv.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests, srv.cuts_left, srv.cut_after = {}, [], 0, 0
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.base_url = f"http://127.0.0.1:{srv.server_address[1]}/60"
    yield srv
    srv.shutdown()
    srv.server_close()


def _leftovers(dest: Path) -> list[str]:
    return [p.name for p in (dest / "LibriTTS").glob(".extract-*")] if (dest / "LibriTTS").exists() else []


def test_full_download_extracts_and_skips_next_time(server, tmp_path):
    archive = _make_tarball()
    server.files[f"/60/{SUBSET}.tar.gz"] = archive
    out = download_subset(SUBSET, tmp_path, (server.base_url,), Checksum(md5=hashlib.md5(archive).hexdigest()))
    assert out == tmp_path / "LibriTTS" / SUBSET
    assert (out / SENTINEL).is_file()
    wavs = sorted(p.name for p in out.glob("*/*/*.wav"))
    assert wavs == ["19_198_000000_000000.wav", "19_198_000000_000001.wav", "26_495_000000_000002.wav"]
    assert (out / "19/198/19_198_000000_000000.normalized.txt").read_text() == "Sentence number 0."
    assert (tmp_path / "LibriTTS" / "README.txt").is_file()
    assert not (tmp_path / "archives" / f"{SUBSET}.tar.gz").exists()  # removed after extraction
    assert _leftovers(tmp_path) == []
    n_requests = len(server.requests)
    download_subset(SUBSET, tmp_path, (server.base_url,))  # already complete: no request
    assert len(server.requests) == n_requests


def test_interrupted_download_resumes_with_range(server, tmp_path):
    archive = _make_tarball()
    server.files["/60/x.tar.gz"] = archive
    server.cuts_left, server.cut_after = 1, 7000
    dest = tmp_path / "x.tar.gz"
    with pytest.raises(DownloadError, match="resume"):
        download_file(f"{server.base_url}/x.tar.gz", dest, retries=0)
    part = tmp_path / "x.tar.gz.part"
    assert part.stat().st_size == 7000 and not dest.exists()
    download_file(f"{server.base_url}/x.tar.gz", dest, retries=0)
    assert dest.read_bytes() == archive and not part.exists()
    assert server.requests[-1] == ("/60/x.tar.gz", "bytes=7000-")


def test_dropped_connection_is_retried_within_one_call(server, tmp_path):
    archive = _make_tarball()
    server.files[f"/60/{SUBSET}.tar.gz"] = archive
    server.cuts_left, server.cut_after = 2, 5000
    download_subset(SUBSET, tmp_path, (server.base_url,), Checksum(sha256=hashlib.sha256(archive).hexdigest()),
                    retries=3)
    assert (tmp_path / "LibriTTS" / SUBSET / SENTINEL).is_file()
    ranges = [r for _, r in server.requests]
    assert ranges == [None, "bytes=5000-", "bytes=10000-"]


def test_mirror_fallback(server, tmp_path):
    archive = _make_tarball()
    server.files[f"/60/{SUBSET}.tar.gz"] = archive
    missing = server.base_url.replace("/60", "/missing")
    download_subset(SUBSET, tmp_path, (missing, server.base_url), Checksum(), retries=0)
    assert (tmp_path / "LibriTTS" / SUBSET / SENTINEL).is_file()


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.files[f"/60/{SUBSET}.tar.gz"] = _make_tarball()
    with pytest.raises(ChecksumError) as exc:
        download_subset(SUBSET, tmp_path, (server.base_url,), Checksum(md5="0" * 32))
    msg = str(exc.value)
    assert "md5 mismatch" in msg and "deleted" in msg and "re-run" in msg
    assert not (tmp_path / "archives" / f"{SUBSET}.tar.gz").exists()
    assert not (tmp_path / "archives" / f"{SUBSET}.tar.gz.part").exists()
    assert not (tmp_path / "LibriTTS" / SUBSET).exists()
    assert _leftovers(tmp_path) == []


def test_cli_with_base_url(server, tmp_path):
    server.files[f"/60/{SUBSET}.tar.gz"] = _make_tarball()
    main(["--dest", str(tmp_path), "--subsets", SUBSET, "--base-url", server.base_url, "--skip-checksum"])
    assert len(list((tmp_path / "LibriTTS" / SUBSET).glob("*/*/*.wav"))) == 3


@pytest.mark.parametrize("bad_name", ["../evil.txt", "/tmp/evil_abs.txt", "LibriTTS/dev-clean/../../../evil.txt"])
def test_unsafe_archive_is_refused(tmp_path, bad_name):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(_make_tarball(extra={bad_name: b"gotcha"}))
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeArchiveError, match="escapes"):
        extract_subset(archive, dest, SUBSET)
    assert not (dest / "LibriTTS" / SUBSET).exists()
    assert not (tmp_path / "evil.txt").exists()
    assert _leftovers(dest) == []


def test_symlink_member_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo(f"LibriTTS/{SUBSET}/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    (tmp_path / "l.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_subset(tmp_path / "l.tar.gz", tmp_path / "dest", SUBSET)
    assert not (tmp_path / "dest" / "LibriTTS" / SUBSET).exists()
