"""The demo's temporary files, all in one private folder removed on shutdown (Ctrl+C or SIGTERM alike):
its outputs, Gradio's cache of uploads and every other temporary file of the process (e.g. the copies
of libespeak-ng.so that the espeak wrapper makes)."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["private_temp_root", "release_temp_users", "sigterm_as_ctrl_c"]


def private_temp_root() -> Path:
    """A fresh folder that becomes this process's temporary folder (tempfile, TMPDIR, Gradio's upload cache):
    removing it on shutdown removes every temporary file the demo, Gradio and the libraries made."""
    root = Path(tempfile.mkdtemp(prefix="ndvq-demo-"))
    os.environ["TMPDIR"] = str(root)
    os.environ["GRADIO_TEMP_DIR"] = str(root / "gradio")
    tempfile.tempdir = str(root)
    atexit.register(shutil.rmtree, root, True)
    return root


def release_temp_users(root: Path) -> None:
    """Run now the finalizers that would remove a folder inside `root` at exit (the espeak wrappers' copies
    of their library): after `root` is gone they would fail with a traceback."""
    import weakref
    for f in list(getattr(weakref.finalize, "_registry", {})):
        info = f.peek()
        if info and any(isinstance(x, str) and x.startswith(str(root)) for x in info[2]):
            f()


def sigterm_as_ctrl_c(signum, frame):
    """SIGTERM (how services are stopped) takes the Ctrl+C path: the server closes, the temp folder goes."""
    raise KeyboardInterrupt
