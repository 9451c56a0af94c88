"""Logging set-up of the entry points (library modules only call logging.getLogger(__name__))."""
from __future__ import annotations

import logging
from typing import Optional


def setup_logging(verbose: bool = False, rank: Optional[int] = None, quiet: bool = False) -> None:
    """Root logging of a `python -m ...` entry point: INFO (DEBUG if `verbose`; with `quiet`, WARNING
    unless `verbose`, then INFO: for tools whose output is their files); with `rank` (a training
    process), INFO on rank 0 and WARNING elsewhere, every line naming its rank."""
    if quiet:
        level = logging.INFO if verbose else logging.WARNING
    else:
        level = logging.DEBUG if verbose else logging.INFO
    if rank is None:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
        return
    logging.basicConfig(level=level if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(name)s: %(message)s", force=True)
