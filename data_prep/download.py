"""Download and extract LibriTTS subsets from OpenSLR (resource 60).

    python -m data_prep.download --dest download --subsets dev-clean test-clean

* Mirrors are tried in order (``MIRRORS``); ``--base-url`` replaces them (used by the tests).
* Downloads resume with HTTP ``Range`` from ``<archive>.part``; a dropped connection is retried.
* The archive is checked against the known checksum (see ``CHECKSUMS``); a bad file is deleted.
* Extraction goes to a temporary directory next to the target and is moved into place with one
  ``os.replace``: ``<dest>/LibriTTS/<subset>/`` either is complete (it holds the sentinel
  ``.ndvq_complete``) or does not exist. Members escaping the target (absolute paths, ``..``,
  links, devices) are refused.
* Subsets whose sentinel exists are skipped.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from core.logs import setup_logging

log = logging.getLogger(__name__)

SUBSETS: tuple[str, ...] = (
    "train-clean-100", "train-clean-360", "train-other-500",
    "dev-clean", "dev-other", "test-clean", "test-other",
)
MIRRORS: tuple[str, ...] = (
    "https://www.openslr.org/resources/60",      # main (US)
    "https://openslr.elda.org/resources/60",     # EU mirror
    "https://openslr.magicdatatech.com/resources/60",  # CN mirror
)
SENTINEL = ".ndvq_complete"


@dataclass(frozen=True)
class Checksum:
    """Known digests of one archive; ``None`` means unknown (the check is skipped with a warning)."""
    md5: str | None = None
    sha256: str | None = None


# MD5 sums: not known for sure here, so left as None rather than guessed.
# SHA-256 sums: from torchaudio.datasets.libritts._CHECKSUMS (the same openslr archives).
CHECKSUMS: dict[str, Checksum] = {
    "dev-clean": Checksum(sha256="da0864e1bd26debed35da8a869dd5c04dfc27682921936de7cff9c8a254dbe1a"),
    "dev-other": Checksum(sha256="d413eda26f3a152ac7c9cf3658ef85504dfb1b625296e5fa83727f5186cca79c"),
    "test-clean": Checksum(sha256="234ea5b25859102a87024a4b9b86641f5b5aaaf1197335c95090cde04fe9a4f5"),
    "test-other": Checksum(sha256="33a5342094f3bba7ccc2e0500b9e72d558f72eb99328ac8debe1d9080402f10d"),
    "train-clean-100": Checksum(sha256="c5608bf1ef74bb621935382b8399c5cdd51cd3ee47cec51f00f885a64c6c7f6b"),
    "train-clean-360": Checksum(sha256="ce7cff44dcac46009d18379f37ef36551123a1dc4e5c8e4eb73ae57260de4886"),
    "train-other-500": Checksum(sha256="e35f7e34deeb2e2bdfe4403d88c8fdd5fbf64865cae41f027a185a6965f0a5df"),
}

_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError)


class DownloadError(RuntimeError):
    """A download failed (network, server, or an incomplete transfer)."""


class ChecksumError(DownloadError):
    """The downloaded archive does not match its known checksum (the file has been deleted)."""


class UnsafeArchiveError(RuntimeError):
    """The archive holds a member that would escape the extraction directory."""


def subset_dir(dest: str | os.PathLike, subset: str) -> Path:
    """``<dest>/LibriTTS/<subset>``, where an extracted subset lives."""
    return Path(dest) / "LibriTTS" / subset


def is_complete(dest: str | os.PathLike, subset: str) -> bool:
    """True if ``subset`` was fully extracted under ``dest`` (its sentinel exists)."""
    return (subset_dir(dest, subset) / SENTINEL).is_file()


# ----------------------------------------------------------------------------- download
def download_file(url: str, dest: str | os.PathLike, retries: int = 3, timeout: float = 60.0,
                  chunk_size: int = 1 << 20, desc: str | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming from ``dest + '.part'``.

    The partial file grows across calls and retries (HTTP ``Range``); it is renamed to ``dest``
    only once the whole body (per Content-Length / Content-Range) has arrived. Raises
    :class:`DownloadError` when all ``retries`` are spent; the ``.part`` file is kept for a resume.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            log.warning("retrying %s (attempt %d/%d) after: %s", url, attempt + 1, retries + 1, last_error)
            time.sleep(min(2.0 ** (attempt - 1), 10.0) * 0.1)
        try:
            _fetch_once(url, part, timeout, chunk_size, desc or dest.name)
            os.replace(part, dest)
            return dest
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise DownloadError(f"{url}: not found (HTTP 404)") from e
            last_error = e
        except (*_NETWORK_ERRORS, DownloadError) as e:
            last_error = e
    raise DownloadError(f"{url}: download failed after {retries + 1} attempts ({last_error}); "
                        f"partial data kept in {part}, re-run to resume")


def _fetch_once(url: str, part: Path, timeout: float, chunk_size: int, desc: str) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "ndvq-data-prep"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range not satisfiable: the .part is already complete
            log.info("%s: partial file already complete (%d bytes)", desc, have)
            return
        raise
    with resp:
        if have and resp.status == 206:
            total = _total_from_content_range(resp.headers.get("Content-Range"))
            mode = "ab"
            log.info("%s: resuming at byte %d", desc, have)
        else:  # 200: server ignored the range, start over
            if have:
                log.warning("%s: server does not support resume, restarting", desc)
            have, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length is not None else None
        got = have
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                          unit_divisor=1024, desc=desc, disable=None, leave=False) as bar:
            while True:
                buf = resp.read(chunk_size)
                if not buf:
                    break
                f.write(buf)
                got += len(buf)
                bar.update(len(buf))
    if total is not None and got < total:
        raise DownloadError(f"{url}: connection closed after {got} of {total} bytes")


def _total_from_content_range(value: str | None) -> int | None:
    # "bytes 100-999/1000"
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def verify_checksum(path: str | os.PathLike, expected: Checksum, label: str) -> None:
    """Check ``path`` against ``expected``; on mismatch delete it and raise :class:`ChecksumError`."""
    path = Path(path)
    if expected.md5 is None and expected.sha256 is None:
        log.warning("%s: no known checksum, integrity not verified", label)
        return
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    for name, want, got in (("md5", expected.md5, md5.hexdigest()), ("sha256", expected.sha256, sha.hexdigest())):
        if want is not None and want.lower() != got:
            path.unlink(missing_ok=True)
            raise ChecksumError(
                f"{label}: {name} mismatch for {path.name} (expected {want}, got {got}). "
                f"The corrupt file was deleted; re-run the same command to download it again, "
                f"or use another mirror with --base-url.")
    log.info("%s: checksum OK", label)


# ----------------------------------------------------------------------------- extraction
def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or member.name.startswith(("/", "\\")):
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} escapes the extraction directory")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a link or special file; refused")


def extract_subset(archive: str | os.PathLike, dest: str | os.PathLike, subset: str) -> Path:
    """Extract a LibriTTS ``archive`` so that ``<dest>/LibriTTS/<subset>`` appears atomically.

    The archive is unpacked into a temporary directory under ``<dest>``; the subset tree (with its
    sentinel written inside) is then renamed into place. Top-level LibriTTS files (README,
    SPEAKERS.txt, ...) are moved next to it if not already present. On any error the temporary
    directory is removed and nothing is left at the target.
    """
    archive, dest = Path(archive), Path(dest)
    target = subset_dir(dest, subset)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".extract-{subset}-", dir=target.parent))
    try:
        # One sequential pass (no getmembers(): that would decompress a 60 GB archive twice). An
        # unsafe member aborts the pass; everything written so far is inside ``tmp`` and removed.
        with tarfile.open(archive, "r|*") as tar:
            for m in tqdm(tar, desc=f"extract {subset}", unit="file", disable=None, leave=False):
                _check_member(m, archive)
                tar.extract(m, tmp, filter="data")
        extracted = tmp / "LibriTTS" / subset
        if not extracted.is_dir():
            raise DownloadError(f"{archive}: does not contain LibriTTS/{subset}/")
        (extracted / SENTINEL).write_text(f"{archive.name}\n", encoding="utf-8")
        for extra in (tmp / "LibriTTS").iterdir():
            if extra.is_file() and not (target.parent / extra.name).exists():
                os.replace(extra, target.parent / extra.name)
        if target.exists():  # a stale tree without sentinel (not ours): replace it
            log.warning("%s exists without a completion sentinel; replacing it", target)
            shutil.rmtree(target)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("extracted %s -> %s", archive.name, target)
    return target


# ----------------------------------------------------------------------------- driver
def download_subset(subset: str, dest: str | os.PathLike, base_urls: tuple[str, ...] = MIRRORS,
                    checksum: Checksum | None = None, keep_archive: bool = False,
                    retries: int = 3, timeout: float = 60.0) -> Path:
    """Download, verify and extract one subset; skip it if already complete. Returns its directory."""
    dest = Path(dest)
    if is_complete(dest, subset):
        log.info("%s: already present in %s, skipping", subset, subset_dir(dest, subset))
        return subset_dir(dest, subset)
    checksum = CHECKSUMS.get(subset, Checksum()) if checksum is None else checksum
    archive = dest / "archives" / f"{subset}.tar.gz"
    if not archive.exists():
        errors = []
        for base in base_urls:
            url = f"{base.rstrip('/')}/{subset}.tar.gz"
            log.info("%s: downloading %s", subset, url)
            try:
                download_file(url, archive, retries=retries, timeout=timeout, desc=subset)
                break
            except DownloadError as e:
                log.warning("%s: %s", subset, e)
                errors.append(str(e))
        else:
            raise DownloadError(f"{subset}: every mirror failed:\n  " + "\n  ".join(errors))
    verify_checksum(archive, checksum, subset)
    out = extract_subset(archive, dest, subset)
    if not keep_archive:
        archive.unlink()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dest", required=True, help="directory receiving LibriTTS/<subset>/ and archives/")
    p.add_argument("--subsets", nargs="+", default=["dev-clean", "test-clean", "train-clean-100"],
                   choices=SUBSETS, metavar="SUBSET", help=f"subsets among: {' '.join(SUBSETS)}")
    p.add_argument("--base-url", default=None, help="one base URL replacing the OpenSLR mirrors")
    p.add_argument("--keep-archives", action="store_true", help="keep the .tar.gz after extraction")
    p.add_argument("--skip-checksum", action="store_true", help="do not verify archive checksums")
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    bases = (args.base_url,) if args.base_url else MIRRORS
    for subset in args.subsets:
        download_subset(subset, args.dest, bases, checksum=Checksum() if args.skip_checksum else None,
                        keep_archive=args.keep_archives, retries=args.retries, timeout=args.timeout)


if __name__ == "__main__":
    main()
