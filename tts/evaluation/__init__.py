"""The pieces of `python -m tts.evaluate` (tts/evaluate.py): the items and rows it scores (inputs.py), the
recognisers behind WER/PER (asr.py), speaker similarity (speaker.py), scoring and targets (scoring.py),
the "ground-truth codebook 1 + NAR" row (nar.py) and the report (report.py)."""
