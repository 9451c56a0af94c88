"""Shared fixtures for the data_prep tests: one tiny mini corpus per session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from data_prep.mini_corpus import SIZES, SUBSETS, build_corpus


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Root directory holding ``LibriTTS/{train-clean-100,dev-clean,test-clean}`` (do not modify it)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    root = tmp_path_factory.mktemp("mini")
    build_corpus(root, SIZES["tiny"], seed=0, jobs=2)
    return root


@pytest.fixture(scope="session")
def tiny_manifests(tiny_corpus, tmp_path_factory) -> Path:
    """Directory with the manifests of the tiny corpus."""
    from data_prep.libritts import prepare_manifests

    out = tmp_path_factory.mktemp("manifests")
    prepare_manifests(tiny_corpus, out, list(SUBSETS), jobs=2)
    return out
