"""The few collective operations the quantizers need (no-ops in a single process)."""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def broadcast_(*tensors: torch.Tensor, src: int = 0) -> None:
    """Overwrite `tensors` on every rank with rank `src`'s values (in place)."""
    if not is_distributed():
        return
    for t in tensors:
        dist.broadcast(t.data, src)


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over ranks in place (EMA statistics must be identical on every rank)."""
    if is_distributed():
        dist.all_reduce(tensor.data, op=dist.ReduceOp.SUM)
    return tensor
