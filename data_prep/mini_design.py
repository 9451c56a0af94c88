"""Designed voices for the mini corpus: espeak-ng voice variants the project writes itself, sampled from a
space of timbres whose held-out region holds the dev and test voices.

Why: espeak-ng ships about 100 variants, of which some 40 are usable and distinct; a model cannot learn a
space of voices from 40 points. A variant file (``voices/!v/<name>`` in a data folder read with
``espeak-ng --path=DIR``) sets the formants' frequencies, heights and widths, the pitch base and range, the
spectral tone, breathiness, flutter and roughness, so a corpus can have hundreds of distinct timbres.
Measured with resemblyzer (2 sentences a voice): 24 random variants of these ranges are as distinct as 24
stock ones (same voice, other sentence 0.906 for both; different voices median 0.676 against 0.651; pairs
above 0.85: 1.4 % against 5.8 %).

The space: two main axes, the vocal-tract scale (every formant frequency times ``tract``, log-uniform in
TRACT_RANGE) and the pitch base (Hz, log-uniform in PITCH_HZ_RANGE), cut into a BANDS x BANDS grid; the
held-out cells (``is_heldout_design_cell``) are interleaved with training cells, so a held-out voice lies
inside the training range but in a cell no training voice uses, and every voice keeps CELL_MARGIN of its
cell's width from the cell's edges: a held-out voice is at least 2 * CELL_MARGIN of a band from every
training voice on one axis or more. The other settings (per-formant detail, heights, widths, pitch range,
tone, breath, flutter, roughness) are drawn freely for every voice.
"""
from __future__ import annotations

import math
import random

TRACT_RANGE = (0.82, 1.22)          # formant-frequency scale (a shorter vocal tract has higher formants)
PITCH_HZ_RANGE = (75.0, 230.0)      # pitch base
BANDS = 6                           # cells per axis
CELL_MARGIN = 0.2                   # a voice keeps this share of its cell's width from each edge
FEMALE_FROM_HZ = 150.0              # gender label of speakers.tsv (pitch base at or above: F)
N_FORMANTS = 6                      # formants 0..5 are designed; 6..8 keep espeak's defaults
VARIANT_PREFIX = "ndvq"


def is_heldout_design_cell(cell: tuple[int, int]) -> bool:
    """Held-out (dev/test) cells of the tract x pitch grid: 9 of 36, interleaved with training cells."""
    return (cell[0] + 2 * cell[1]) % 4 == 1


def design_cells(heldout: bool) -> list[tuple[int, int]]:
    return [(t, p) for t in range(BANDS) for p in range(BANDS) if is_heldout_design_cell((t, p)) == heldout]


def _log_band(value: float, lo: float, hi: float) -> float:
    """Position of value on a log axis, in bands (0 .. BANDS)."""
    return BANDS * math.log(value / lo) / math.log(hi / lo)


def design_position(tract: float, pitch_hz: float) -> tuple[float, float]:
    """A voice's position in the grid, in bands (the cell is the integer part)."""
    return _log_band(tract, *TRACT_RANGE), _log_band(pitch_hz, *PITCH_HZ_RANGE)


def design_cell(tract: float, pitch_hz: float) -> tuple[int, int]:
    t, p = design_position(tract, pitch_hz)
    return min(BANDS - 1, max(0, int(t))), min(BANDS - 1, max(0, int(p)))


def _in_band(band: int, lo: float, hi: float, rng: random.Random) -> float:
    u = rng.uniform(band + CELL_MARGIN, band + 1 - CELL_MARGIN) / BANDS
    return lo * (hi / lo) ** u


def sample_design(cell: tuple[int, int], rng: random.Random) -> tuple[float, float, str]:
    """(tract scale, pitch base Hz, the variant file's settings) of a voice drawn inside ``cell``."""
    tract = _in_band(cell[0], *TRACT_RANGE, rng)
    pitch = _in_band(cell[1], *PITCH_HZ_RANGE, rng)
    assert design_cell(tract, pitch) == cell
    lines = [f"pitch {round(pitch)} {round(pitch * rng.uniform(1.3, 1.9))}"]
    for k in range(N_FORMANTS):
        detail = 1.0 if k == 0 else rng.uniform(0.94, 1.06)      # formant 0 (the voicing bar) follows the tract
        lines.append(f"formant {k} {round(100 * tract * detail)} {rng.randint(75, 125)} {rng.randint(85, 115)}")
    if rng.random() < 0.5:
        lines.append("tone 600 {} 1200 {} 2000 {}".format(*(rng.randint(90, 255) for _ in range(3))))
    if rng.random() < 0.35:
        lines.append("breath " + " ".join(str(rng.randint(0, 6)) for _ in range(8)))
    lines.append(f"flutter {rng.randint(0, 20)}")
    lines.append(f"roughness {rng.randint(0, 4)}")
    return round(tract, 4), round(pitch, 2), "\n".join(lines)


def variant_text(name: str, gender: str, settings: str) -> str:
    """The text of espeak-ng's variant file ``voices/!v/<name>``."""
    return f"language variant\nname {name}\ngender {'female' if gender == 'F' else 'male'}\n{settings}\n"


__all__ = ["TRACT_RANGE", "PITCH_HZ_RANGE", "BANDS", "CELL_MARGIN", "FEMALE_FROM_HZ", "VARIANT_PREFIX",
           "is_heldout_design_cell", "design_cells", "design_position", "design_cell", "sample_design",
           "variant_text"]
