"""NDVQ vs RVQ ablation: `python -m experiments.ablation` or `bash egs/libritts/ablation.sh` (docs/ablation.md).

Outside the library: it imports codec and core, and runs egs/libritts/run.sh for its downstream TTS.
Its modules, each importing only those above it in this list:

    plan.py                 variants, seeds, runs, sentinels (the leaf)
    robustness.py           noise at an SNR, code flips
    codestats.py            per-stage code statistics
    runner.py               F0 caches, train under accelerate, evaluate (with pitch), cache result.json
    summary.py              mean ± std over seeds and the report's number formatting
    downstream.py           the TTS on every (variant, seed) codec run's codes (run.sh stages 4-8)
    table.py, verdict.py    the per-seed value table; wins / ties / losses against the seed spread
    plots.py                the PNGs
    downstream_report.py    the report's Downstream TTS tables over seeds and verdict paragraphs
    report.py               report.json / report.md / plots with the generated verdict
    archive.py              every finished run's numbers in a committable folder, and resuming from it
    __main__.py             the command line
"""
