"""Process settings every entry point wants before torch loads: OpenMP waiting and denormals.

Import this module first (`import core.runtime` before `import torch`) in a `python -m` entry point:
libgomp reads its waiting policy once, when torch loads it. An OMP_WAIT_POLICY or GOMP_SPINCOUNT
already in the environment wins.

Why a short spin: the 2 cores of a CPU box are usually shared (an inference benchmark, a data job,
metric workers). libgomp's default spins ~3 ms at every barrier before sleeping; when one thread of
the pair has been descheduled, its partner burns the core the other needs: a mini codec training step
took about 3 s instead of 0.5 s beside another 2-thread torch job. A spin of 1000 (~10 us) keeps nearly
all of PASSIVE's gain under load and most of spinning's speed when idle (measured:
benchmarks/results/codec_train.md). PASSIVE covers OpenMP runtimes other than libgomp. Scheduling
only: results do not change.
"""
from __future__ import annotations

import os
import sys

OMP_SPIN_COUNT = 1000


def set_openmp_waiting() -> bool:
    """Set the short OpenMP spin unless the environment chose one or torch is already loaded (then too
    late: libgomp has read its settings). True if it set them."""
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["GOMP_SPINCOUNT"] = str(OMP_SPIN_COUNT)     # libgomp: overrides the policy's spin count of 0
    return True


def flush_denormals() -> None:
    """Flush denormals to zero in this thread (the intra-op pool's threads inherit it when created):
    tiny early activations and gradients made CPU steps ~10x slower with 2 threads on one machine
    (mini codec: 10 s vs 0.55 s a step); kept as a guard, it costs nothing. Then the intra-op thread
    count is set again (to itself), so a pool started from here starts after the flag."""
    import torch
    torch.set_flush_denormal(True)
    torch.set_num_threads(torch.get_num_threads())


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask on Linux, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


set_openmp_waiting()
