"""Model arguments that name either a local directory or a Hugging Face Hub repository."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

CONFIG_FILE = "config.json"           # a model directory: its record (resolved config + what the model adds)
WEIGHTS_FILE = "model.safetensors"     # ... and its state dict
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE)


def is_hub_id(spec: Union[str, os.PathLike]) -> bool:
    """Whether a model argument that is not a local directory should be fetched from the Hub.

    "owner/name" is a Hub id unless it looks local: it exists (a file), starts with "." or "/", or
    its first part is a local folder ("exp/ar_typo" beside an existing exp/ is a mistyped path, not
    the Hub user "exp")."""
    s = str(spec)
    p = Path(s)
    return not (p.exists() or s.startswith((".", "/", "~")) or s.count("/") != 1 or p.parent.is_dir())


def resolve_model_dir(spec: Union[str, os.PathLike], what: str, hint: str = "",
                      files: Sequence[str] = MODEL_FILES, revision: Optional[str] = None,
                      cache_dir: Optional[str] = None) -> Path:
    """A local directory as is, or a Hub id "owner/name" downloaded (only `files`); otherwise
    FileNotFoundError in one line naming `what` (and `hint`: what to do instead)."""
    p = Path(spec)
    if p.is_dir():
        return p
    if not is_hub_id(spec):
        raise FileNotFoundError(f"{what}: {spec} is not a directory (expected {' + '.join(files)}) nor a Hub id "
                                f"owner/name" + (f"; {hint}" if hint else ""))
    from huggingface_hub import snapshot_download
    return Path(snapshot_download(str(spec), revision=revision, cache_dir=cache_dir, allow_patterns=list(files)))
