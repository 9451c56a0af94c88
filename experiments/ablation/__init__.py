"""NDVQ vs RVQ ablation (issue 12): `python -m experiments.ablation` or `bash egs/libritts/ablation.sh`.

plan.py (variants, seeds, runs, sentinels), runner.py (train under accelerate, evaluate, cache),
robustness.py (noise at an SNR, code flips), codestats.py (per-stage code statistics), report.py +
plots.py (report.json / report.md / PNGs with a generated verdict). See docs/ablation.md.
"""
