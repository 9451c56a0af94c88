"""The pieces of `python -m codec.evaluate` (codec/evaluate.py): the audio metrics shared with the TTS
evaluation (metrics.py), the ceiling rows with the reference's own magnitudes (oracle.py) and the report
with its plots (report.py)."""
