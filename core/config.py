"""Dataclass configs: defaults in code, YAML files with overrides only, `key=value` last.

A config is a tree of dataclasses. `load_config(Cls, ["a.yaml"], ["train.lr=1e-3"])` starts from
`Cls()`, applies each YAML file (nested mappings, only the keys it wants to change) and then each
dotted `key=value` override (values parsed as YAML, so `1e-3`, `true`, `[1, 2]` work). Unknown keys
are an error naming the key and the file, so a typo never silently trains the wrong model.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the dataclass."""


def to_dict(cfg: Any) -> dict:
    """A plain (JSON/YAML-serialisable) dict of a dataclass tree; tuples become lists."""
    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return conv(cfg)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Turn a YAML value into the field's declared type (tuples, nested dataclasses, floats)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {hint.__name__}, got {value!r}")
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(value, non_none[0], where)
        return value
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, where) for v in value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return [_coerce(v, inner, where) for v in value]
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError as e:
            raise ConfigError(f"{where}: {value!r} is not a number") from e
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint in (int, float, bool, str) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict, where: str = "config", base: T | None = None) -> T:
    """Build `cls` from a (possibly partial) dict, on top of `base` (default: `cls()`)."""
    obj = base if base is not None else cls()
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r} for {cls.__name__} (known: {sorted(names)})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            changes[key] = from_dict(hint, value, f"{where}.{key}", getattr(obj, key))
        else:
            changes[key] = _coerce(value, hint, f"{where}.{key}")
    return dataclasses.replace(obj, **changes)


def _nest(dotted: str, value: Any) -> dict:
    out: dict = {}
    cur = out
    parts = dotted.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def load_config(cls: type[T], files: Iterable[str | Path] = (), overrides: Iterable[str] = ()) -> T:
    """Defaults, then each YAML file, then each `a.b=value` override."""
    cfg = cls()
    if isinstance(files, (str, Path)):       # one file, not the characters of its name
        files = [files]
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        cfg = from_dict(cls, data, str(path), cfg)
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: T, overrides: Iterable[str]) -> T:
    """`cfg` with each dotted `a.b=value` override applied in order (values parsed as YAML)."""
    cls = type(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        cfg = from_dict(cls, _nest(key.strip(), yaml.safe_load(raw)), f"override {item!r}", cfg)
    return cfg


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as JSON (atomic)."""
    from .io import atomic_write_text
    atomic_write_text(path, json.dumps(to_dict(cfg), indent=2) + "\n")
