"""Progress of long work: a tqdm bar on a terminal, a log line every N steps anywhere else.

    for x in progress(items, desc="phonemize", unit="utt"): ...
    bar = progress(total=1400, desc="train", unit="step"); bar.update(1); bar.set_postfix(loss="0.1"); bar.close()

A progress bar redraws itself with carriage returns: right on a terminal, thousands of glued updates
in a log file (the recipe tees stderr into ``exp/run.log``). So the bar is drawn only when stderr is a
terminal; otherwise :class:`LogProgress`, with the part of tqdm's interface the project uses, logs
one line (``desc: 200/1400 step (14%), 1m23s elapsed, ~7m00s left, loss=0.123``) every ``every`` units
(default: a twentieth of the total, or 100 without one) and at least every ``seconds`` seconds, plus
one at the end. ``NDVQ_PROGRESS=bar|log|off`` overrides the choice.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Iterable, Iterator, Optional

__all__ = ["progress", "LogProgress", "use_bar"]

log = logging.getLogger("ndvq.progress")


def use_bar() -> Optional[bool]:
    """True: draw a bar; False: log lines; None: nothing (NDVQ_PROGRESS=off)."""
    mode = os.environ.get("NDVQ_PROGRESS", "").strip().lower()
    if mode == "off":
        return None
    if mode in ("bar", "log"):
        return mode == "bar"
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _hms(s: float) -> str:
    s = int(max(0, s))
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def _num(x: float) -> str:
    return f"{x:d}" if isinstance(x, int) else f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


class LogProgress:
    """tqdm's update / set_postfix / set_description / write / close / iteration, as log lines."""

    def __init__(self, iterable: Optional[Iterable] = None, total: Optional[float] = None, desc: str = "",
                 unit: str = "it", initial: float = 0, every: Optional[float] = None, seconds: float = 60.0,
                 logger: Optional[logging.Logger] = None, disable: bool = False, **_: Any):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = initial
        self.disable = disable
        self.every = every if every else (total / 20 if total else 100)
        self.seconds = seconds
        self.log = logger or log
        self.postfix = ""
        self._start_n = initial
        self._t0 = self._last_t = time.monotonic()
        self._next = (initial // self.every + 1) * self.every if self.every > 0 else float("inf")
        self._closed = False
        self._logged_n: Optional[float] = None

    # tqdm's interface ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator:
        try:
            for x in self.iterable or ():
                yield x
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self.disable:
            return
        if self.n >= self._next or now - self._last_t >= self.seconds:
            self._emit(now)
            while self.every > 0 and self._next <= self.n:
                self._next += self.every

    def set_postfix(self, ordered_dict: Optional[dict] = None, refresh: bool = True, **kw: Any) -> None:
        items = {**(ordered_dict or {}), **kw}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: Optional[str] = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def write(self, s: str) -> None:
        self.log.info("%s", s)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.disable and self._logged_n != self.n and self.n != self._start_n:
            self._emit(time.monotonic(), done=True)

    # ---------------------------------------------------------------------------------------------
    def _emit(self, now: float, done: bool = False) -> None:
        self._last_t = now
        self._logged_n = self.n
        el = now - self._t0
        s = f"{self.desc}: {_num(self.n)}"
        if self.total:
            s += f"/{_num(self.total)} {self.unit} ({100.0 * self.n / self.total:.0f}%)"
        else:
            s += f" {self.unit}"
        s += f", {_hms(el)} elapsed"
        rate = (self.n - self._start_n) / el if el > 0 else 0.0
        if self.total and rate > 0 and not done and self.n < self.total:
            s += f", ~{_hms((self.total - self.n) / rate)} left"
        if self.postfix:
            s += f", {self.postfix}"
        self.log.info("%s%s", s, " (done)" if done else "")


def progress(iterable: Optional[Iterable] = None, *, total: Optional[float] = None, desc: str = "",
             unit: str = "it", initial: float = 0, enabled: bool = True, every: Optional[float] = None,
             seconds: float = 60.0, logger: Optional[logging.Logger] = None, **tqdm_kw: Any):
    """A tqdm bar when stderr is a terminal, else a :class:`LogProgress` (see the module docstring).

    ``enabled=False`` (e.g. a non-main rank) gives a silent one; extra keywords go to tqdm only."""
    mode = use_bar() if enabled else None
    if mode:
        from tqdm import tqdm
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True, **tqdm_kw)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, every=every, seconds=seconds,
                       logger=logger, disable=mode is None)
