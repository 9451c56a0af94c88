"""Atomic file writes for the codec: the shared implementation in data_prep.fileio.

A reader (or a resumed run) sees either the old file or the complete new one, never half.
"""
from data_prep.fileio import atomic_path, atomic_write_bytes, atomic_write_text

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]
