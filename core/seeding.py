"""Seeding: every random draw of a run comes from (seed, a named stream, keys), so a run resumed at
step s draws what the uninterrupted run drew, on any number of processes.

`stream_rng(seed, Stream.X, *keys)` is numpy's `default_rng([seed, X, *keys])`: independent streams
for independent purposes, each a pure function of its keys. The RNG states of python, numpy and torch
are also saved in checkpoints (`capture_rng_state`, in a form torch.load(weights_only=True) reads).
"""
from __future__ import annotations

import random
from enum import IntEnum

import numpy as np
import torch


def capture_rng_state() -> dict:
    """Python, numpy and torch RNG states in a weights_only-loadable form."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Stream(IntEnum):
    """The named random streams (the number is the second key of the stream's generator; never reuse one:
    a stream's draws are part of what makes old runs replay bit for bit)."""
    CODEC_CROP = 1       # codec.data: the crop offsets of a group of training items
    STEP = 2             # core.trainer.step_seed: the torch seed of one (step, rank)
    TTS_BUCKETS = 3      # tts.data: the order of an epoch's length buckets
    TTS_ITEMS = 4        # tts.data: the per-item seeds (prompt choice) of one (step, rank)
    TTS_VALID = 5        # tts.data: the validation items' fixed seeds
    ALIGN_ORDER = 7      # tts.align.train: the batch order of an epoch


# Two older draws of the codec predate the named streams; their formulas stay (changing one would change
# every codec run's data order or bandwidths).
def codec_epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """codec.data: the generator of an epoch's utterance permutation."""
    return np.random.default_rng([seed, epoch])


def codec_bandwidth_rng(seed: int, step: int) -> random.Random:
    """codec.train.bandwidth_at: the generator of a step's bandwidth (the same on every rank)."""
    return random.Random(seed * 1_000_003 + step)


def stream_rng(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """The generator of (seed, stream, keys): the same keys give the same draws, in any process."""
    return np.random.default_rng([int(seed), int(stream), *(int(k) for k in keys)])


def stream_seed(seed: int, stream: Stream, *keys: int) -> int:
    """A 62-bit integer seed drawn from (seed, stream, keys) (e.g. for torch.manual_seed)."""
    return int(stream_rng(seed, stream, *keys).integers(0, 2 ** 62))
