"""Progress: a bar on a terminal; in a log file, a line every N steps and no carriage returns."""
import io
import logging


from core.trainer import Budget, progress_bar
from core.progress import LogProgress, progress


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


def test_not_a_terminal_gives_log_lines_every_n_steps_and_no_carriage_returns(monkeypatch, caplog):
    monkeypatch.delenv("NDVQ_PROGRESS", raising=False)
    err = _Stream(False)
    monkeypatch.setattr("sys.stderr", err)
    caplog.set_level(logging.INFO, logger="ndvq.progress")
    bar = progress_bar(Budget(max_steps=200, max_minutes=None), 0, True, desc="train ar")
    assert isinstance(bar, LogProgress)
    for step in range(200):
        bar.set_postfix(loss=f"{1.0 / (step + 1):.3f}")
        bar.update(1)
    bar.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "ndvq.progress"]
    assert len(lines) == 20                                 # every 5% of the steps, the last one included
    assert lines[0].startswith("train ar: 10/200 step (5%)") and "loss=" in lines[0]
    assert lines[-1].startswith("train ar: 200/200 step (100%)")
    assert err.getvalue() == ""                             # nothing drawn on stderr
    assert not any("\r" in line for line in lines)


def test_a_terminal_gets_a_tqdm_bar(monkeypatch):
    monkeypatch.delenv("NDVQ_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", _Stream(True))
    from tqdm import tqdm
    bar = progress(total=3, desc="x", file=io.StringIO())
    assert isinstance(bar, tqdm)
    bar.close()


def test_disabled_and_iteration(monkeypatch, caplog):
    monkeypatch.setenv("NDVQ_PROGRESS", "log")
    caplog.set_level(logging.INFO, logger="ndvq.progress")
    assert list(progress(range(5), desc="it", every=2)) == [0, 1, 2, 3, 4]
    msgs = [r.getMessage() for r in caplog.records]
    assert [m.split(",")[0] for m in msgs] == ["it: 2/5 it (40%)", "it: 4/5 it (80%)", "it: 5/5 it (100%)"]
    caplog.clear()
    bar = progress(total=10, enabled=False)
    bar.update(10)
    bar.close()
    assert not caplog.records
