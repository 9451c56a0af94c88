"""VALL-E-style zero-shot TTS on the codec's codes.

    from tts import Synthesizer
    syn = Synthesizer.from_pretrained(exp_dir="exp")
    res = syn.synthesize("Hello there.", "prompt.wav", "the prompt's transcript", seed=1)

The package (each module one concept):

* config: TTSConfig (model, data, optim, train); limits: input limits shared by synthesis and the demo;
* models/: the AR (codebook 1) and NAR (codebooks 2..n_q) transformers, decoding (AR sampling loop,
  greedy NAR, planned durations); sampling: token sampling and length bounds; build: a model from its config;
* batch, data: the training batches of a code dump; train (+ valid, curves): `python -m tts.train`;
* checkpoint: model directories (config.json + model.safetensors), codec and front-end checks;
* synthesizer: text + prompt -> speech (`Synthesizer`); synthesize: its CLI `python -m tts.synthesize`;
* zeroshot_list: the recipe's zero-shot test list; evaluate: the stage-8 evaluation `python -m tts.evaluate`,
  its pieces in evaluation/ (items, ASR, speaker similarity, pitch, voices (floors, nearest training voice),
  bootstrap intervals, scoring, the NAR row, the report, plots);
  diagnostics, prompt_gain: what the training validation shows of the models (text and prompt gains,
  baselines, attention);
* align/: a CTC aligner trained on the codes' frame rate, its durations and phoneme error rate;
* demo: the Gradio demo `python -m tts.demo`.

Importing `tts` loads nothing heavy: the names below are imported on first use (so an entry point can
import core.runtime before torch).
"""
from __future__ import annotations

from core.lazy import lazy_face

_EXPORTS = {
    "Synthesizer": "synthesizer",
    "SynthesisResult": "synthesizer",
    "SamplingConfig": "sampling",
    "TTSConfig": "config",
    "load_tts_model": "checkpoint",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS)
