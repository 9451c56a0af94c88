"""Small file helpers shared by every stage (data_prep, codec, tts): atomic writes and JSONL I/O.

Every writer here goes through a temporary file in the destination directory, fsync, then
``os.replace``, so a reader (or a resumed run) never sees a half-written file and an interrupted
stage leaves either the old file or nothing behind.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger(__name__)

__all__ = ["atomic_path", "temp_file_beside", "atomic_write_bytes", "atomic_write_text", "write_jsonl", "append_jsonl", "iter_jsonl", "read_jsonl",
           "sha256_file", "portable_path", "portable_paths", "path_for_file", "path_from_file"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only (0600); a file we publish should get the mode an
# ordinary open() would give it (0666 minus the umask), or a shared dump is unreadable to a colleague.
_FILE_MODE = 0o666 & ~_umask()


def temp_file_beside(path: Path, suffix: str = "") -> Path:
    """An empty temporary file in `path`'s folder with the permissions of a normally created file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it into place atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` lets writers that infer the format from the extension (soundfile) see it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = temp_file_beside(path, suffix)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:       # durable before it becomes visible under `path`
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write one JSON object per line to ``path`` atomically; return the number of rows."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def append_jsonl(path: str | os.PathLike, row: dict[str, Any]) -> None:
    """Append one row to a JSONL log (a line per event; a reader skips a torn last line)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Iterate over the JSON objects of a JSONL file (blank lines are ignored).

    A malformed line raises ``ValueError`` naming the file and the line number.
    """
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: malformed JSON line ({e})") from e


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a whole JSONL file into a list of dicts."""
    return list(iter_jsonl(path))


def portable_path(path: str | os.PathLike, start: str | os.PathLike | None = None) -> str:
    """``path`` as a report may name it on any machine: relative to ``start`` (default: the current
    folder) when under it, else relative to the repository when under it, else relative to ``start``
    through at most two ``..``, else its name alone. A relative path is returned as it is."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    p = Path(os.path.abspath(p))
    base = Path(os.path.abspath(start if start is not None else os.getcwd()))
    for root in (base, REPO_ROOT):
        try:
            return p.relative_to(root).as_posix() or "."
        except ValueError:
            pass
    rel = Path(os.path.relpath(p, base)).as_posix()
    return rel if not rel.startswith("../../../") else p.name


def portable_paths(obj: Any, start: str | os.PathLike | None = None) -> Any:
    """``obj`` (JSON-like) with every string that is an absolute path made :func:`portable_path`."""
    if isinstance(obj, dict):
        return {k: portable_paths(v, start) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable_paths(v, start) for v in obj]
    if isinstance(obj, str) and obj.startswith("/") and "\n" not in obj and " " not in obj:
        return portable_path(obj, start)
    return obj


def path_for_file(path: str | os.PathLike, folder: str | os.PathLike) -> str:
    """``path`` as a file written to ``folder`` should store it: relative to the current folder (a recipe
    directory, which moves as a whole) when both lie in it, else absolute. :func:`path_from_file` reads it."""
    p, f, here = (Path(os.path.abspath(x)) for x in (path, folder, os.getcwd()))
    if p.is_relative_to(here) and f.is_relative_to(here):
        return p.relative_to(here).as_posix()
    return str(p)


def path_from_file(path: str | os.PathLike, folder: str | os.PathLike, hint: list | None = None) -> str:
    """A path read from a file in ``folder``, absolute: a relative one is looked up from ``folder`` and
    each folder above it (the directory it was written from), then from the current folder. ``hint``
    (a one-element list) remembers the base found, for the next rows of the same file."""
    p = Path(path)
    if p.is_absolute():
        return str(p)
    f = Path(os.path.abspath(folder))
    bases = ([hint[0]] if hint else []) + [f, *f.parents, Path(os.getcwd())]
    for base in bases:
        if (base / p).exists():
            if hint is not None:
                hint[:] = [base]
            return os.path.normpath(base / p)
    return os.path.abspath(p)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (the identity of a codec or model checkpoint)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
