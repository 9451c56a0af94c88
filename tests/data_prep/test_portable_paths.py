"""Committed reports name no machine paths; the writers make paths relative (core.io.portable_path)."""
import re

import pytest

from core.io import REPO_ROOT, portable_path, portable_paths

# the ablation's archive too: every run's numbers (experiments/ablation/archive.py)
COMMITTED_REPORTS = ["docs/ablation_mini/report.json", "docs/ablation_mini/report.md", "docs/ablation_mini/eval_items.jsonl",
                     "benchmarks/results/codec_inference.json", "benchmarks/results/codec_inference.md",
                     "benchmarks/results/codec_tokenize_workers.json", "benchmarks/results/codec_tokenize_workers.md",
                     *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs" / "ablation_mini").rglob("*")
                             if p.suffix in (".json", ".jsonl", ".md") and p.parent.name != "ablation_mini")]
MACHINE_PATH = re.compile(r"(?<![\w.:/])/(?:work|home|tmp|root|Users|mnt|data|scratch|var)/[^\s`'\"]+")


@pytest.mark.parametrize("rel", COMMITTED_REPORTS)
def test_committed_reports_name_no_machine_paths(rel):
    p = REPO_ROOT / rel
    if not p.is_file():
        pytest.skip(f"{rel} is not in this checkout")
    found = MACHINE_PATH.findall(p.read_text(encoding="utf-8"))
    assert not found, f"{rel} names machine paths: {found[:5]}"


def test_portable_path(tmp_path):
    out = tmp_path / "ablation_out"
    assert portable_path(out / "eval_items.jsonl", out) == "eval_items.jsonl"
    assert portable_path(REPO_ROOT / "egs" / "libritts" / "data", out) == "egs/libritts/data"
    assert portable_path(tmp_path / "other" / "m.jsonl", out) == "../other/m.jsonl"
    assert portable_path("/a/b/c/d/e/far.json", REPO_ROOT / "x") in ("far.json",)
    assert portable_path("relative/x.wav", out) == "relative/x.wav"
    rep = portable_paths({"settings": {"manifest": str(out / "m.jsonl"), "n": 3},
                          "rows": [{"report": str(out / "d" / "report.md")}], "note": "a / b"}, out)
    assert rep == {"settings": {"manifest": "m.jsonl", "n": 3}, "rows": [{"report": "d/report.md"}], "note": "a / b"}
