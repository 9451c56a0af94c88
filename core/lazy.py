"""Package faces that import on first use (PEP 562), so `import codec` or `import tts` loads no torch
and an entry point can still import core.runtime before torch loads."""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_face(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package`'s `__init__`: `exports` maps each public name to the
    submodule (relative to `package`) that defines it; a name is imported when first used, then cached."""
    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
