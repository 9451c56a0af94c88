"""The ablation's value table: every finished run's result.json -> {name: {variant: [value per seed]}}.

A name says what a value measures, "|"-separated: clean|<metric or pitch score>|<kbps or row kind>,
noisy|<metric>|<kind>@<snr>|<kbps>, flips_input|<kind>@<snr>, flips_latent|<level> (and their _stage1
twins), usage|<summary>, stage|<used, perplexity or sigma_rel>|<stage>. The verdict (verdict.py), the
report's tables (report.py) and the plots (plots.py) read it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .summary import PITCH_KEYS


def _score(row_scores: dict, key: str) -> Optional[float]:
    s = row_scores.get(key)
    return None if not s or not s.get("n") else float(s["mean"])


def collect(results: list[dict]) -> dict:
    """Per-seed values keyed by what they measure: {name: {variant: [value per seed]}}."""
    table: dict[str, dict[str, list]] = {}

    def put(name, var, value):
        if value is not None:
            table.setdefault(name, {}).setdefault(var, []).append(value)
    for res in results:
        v = res["variant"]
        for row in res["clean"]["rows"]:
            tag = f"{row['kbps']:g}" if row["kind"] == "codes" else row["kind"]
            for k in res["keys"]:
                put(f"clean|{k}|{tag}", v, _score(row["scores"], k))
            for k in PITCH_KEYS:          # pooled over the row's frames; NaN (no frame voiced in both) left out
                x = (row.get("pitch") or {}).get(k)
                put(f"clean|{k}|{tag}", v, float(x) if x is not None and np.isfinite(x) else None)
        for row in res["robustness"]["rows"]:
            for k in res["keys"]:
                put(f"noisy|{k}|{row['kind']}@{row['snr_db']:g}|{row['kbps']:g}", v, _score(row["scores"], k))
        for cond, fl in res["robustness"]["input_flips"].items():
            put(f"flips_input|{cond}", v, float(np.mean(fl)))
            put(f"flips_input_stage1|{cond}", v, fl[0])
        for lvl, fl in res["robustness"]["latent_flips"].items():
            put(f"flips_latent|{lvl}", v, float(np.mean(fl)))
            put(f"flips_latent_stage1|{lvl}", v, fl[0])
        cs = res["codestats"]
        put("usage|perplexity_mean", v, float(np.mean([s["perplexity"] for s in cs])))
        put("usage|used_mean", v, float(np.mean([s["codes_used"] for s in cs])))
        put("usage|used_min", v, float(min(s["codes_used"] for s in cs)))
        put("usage|distance_rel_stage1", v, cs[0]["distance_rel"])
        for s in cs:
            put(f"stage|used|{s['stage']}", v, s["codes_used"])
            put(f"stage|perplexity|{s['stage']}", v, s["perplexity"])
            if s.get("sigma_rel_median") is not None:
                put(f"stage|sigma_rel|{s['stage']}", v, s["sigma_rel_median"])
    return table

