"""VALL-E models: ARModel (codebook 1 + <eos>) and NARModel (codebooks 2..n_q); see each module."""
from .ar import ARModel
from .nar import NARModel
from .output import TTSOutput

__all__ = ["ARModel", "NARModel", "TTSOutput"]
