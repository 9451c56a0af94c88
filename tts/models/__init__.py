"""VALL-E models: ARModel (codebook 1 + <eos>) and NARModel (codebooks 2..n_q), and the FrameAlignment both
can read (which phoneme each frame speaks); see each module."""
from .alignment import FrameAlignment
from .ar import ARModel
from .nar import NARModel
from .output import TTSOutput

__all__ = ["ARModel", "FrameAlignment", "NARModel", "TTSOutput"]
