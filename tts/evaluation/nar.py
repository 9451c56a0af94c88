"""The "ground-truth codebook 1 + NAR" row of tts.evaluate: the recording's own codebook 1, codebooks
2..n_q by the NAR, so the row isolates the NAR (resynthesis -> this row is the NAR's loss, this row ->
tts the AR's); and the models' text front end, which the row and the PER share."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from core.checkpoint import read_model_config
from core.io import portable_path
from core.hub import CONFIG_FILE

from .inputs import EvalItem, load_wav

log = logging.getLogger(__name__)

__all__ = ["NARRow", "load_nar_row", "model_frontend"]


@dataclass
class NARRow:
    """What the "ground-truth codebook 1 + NAR" row needs: the NAR, the codec, the text front end, and for a
    NAR that reads durations the phoneme recognizer that aligns the prompt and the recording (recipe stage 4's
    forced alignment, as in training)."""
    model: object
    codec: object
    frontend: object
    recognizer: object = None

    def audio(self, it: EvalItem, ref: tuple[np.ndarray, int]) -> tuple[Optional[tuple[np.ndarray, int]], str]:
        """(audio, "") or (None, why). The recording's codebook 1 (its own codes), codebooks 2..n_q by the
        NAR given the whole prompt's codes and the phonemes `tts.synthesize` gives the NAR (prompt text +
        target for a `prefix`-mode NAR, the target alone for `other_utterance`), decoded at the
        recording's scale."""
        import torch
        from tts.models.decoding import nar_generate
        prm = load_wav(it.prompt_wav)
        if prm is None or not it.prompt_text:
            return None, "no prompt audio or prompt text"
        nar, codec, fe = self.model, self.codec, self.frontend
        K = nar.cfg.n_q
        r = codec.encode(ref[0], ref[1], n_q=K)
        first = r.item_codes(0)[0]
        prompt = codec.encode(prm[0], prm[1], n_q=K).item_codes(0)
        tokens = fe.phonemize([it.text])[0]
        ids = fe.encode(tokens)
        if nar.cfg.prompt_mode == "prefix":
            p_tokens = fe.phonemize([it.prompt_text])[0]
            ids = fe.encode(p_tokens) + [fe.symbols.word_sep_id] + ids
        if len(ids) > nar.cfg.max_text_tokens or prompt.shape[1] + first.numel() > nar.cfg.max_frames:
            return None, (f"{len(ids)} phonemes / {prompt.shape[1]} + {first.numel()} frames exceed the NAR's "
                          f"max_text_tokens {nar.cfg.max_text_tokens} / max_frames {nar.cfg.max_frames}")
        dur = None
        if nar.cfg.nar_alignment == "durations":       # prompt + separator (no frames) + target, as in training
            dp = self.recognizer.durations(prm[0], prm[1], p_tokens, prompt.shape[1])
            dt = self.recognizer.durations(ref[0], ref[1], tokens, first.numel())
            if dp is None or dt is None:
                return None, "the forced alignment of the prompt or the recording failed"
            dur = [torch.tensor(dp + [0] + dt, dtype=torch.long)]
        codes = nar_generate(nar, [torch.tensor(ids, dtype=torch.long)], [prompt], [first], dur)[0]
        wav = codec.decode(codes[None], scales=r.scales, num_samples=r.num_samples)[0, 0].numpy()
        return (wav, codec.sample_rate), ""


def load_nar_row(nar_dir: Optional[str], codec, frontend, recognizer=None) -> Optional[NARRow]:
    """The row's models from `--nar` (None when not given, without a codec, not an exported NAR, or a NAR
    that reads durations without `recognizer` to align them)."""
    if not nar_dir:
        return None
    if codec is None:
        log.warning("--nar without --codec: the 'ground-truth codebook 1 + NAR' row needs the codec; left out")
        return None
    if not (Path(nar_dir) / CONFIG_FILE).is_file():
        log.warning("--nar %s: no config.json (not an exported NAR); the 'ground-truth codebook 1 + NAR' row "
                    "is left out", nar_dir)
        return None
    from tts.checkpoint import check_codec, check_frontend, load_tts_model
    lt = load_tts_model(nar_dir)
    if lt.part != "nar":
        raise ValueError(f"--nar {nar_dir}: is a {lt.part.upper()} model, expected the NAR")
    check_codec(lt.meta, codec.checkpoint_sha256, f"NAR model {nar_dir}")
    check_frontend(lt.meta, frontend, f"NAR model {nar_dir}")
    if lt.model.cfg.n_q > codec.n_q:
        raise ValueError(f"--nar {nar_dir} models {lt.model.cfg.n_q} codebooks; the codec has {codec.n_q}")
    if lt.model.cfg.nar_alignment == "durations" and recognizer is None:
        log.warning("--nar %s reads phoneme durations: the 'ground-truth codebook 1 + NAR' row needs --aligner to "
                    "align them; left out", nar_dir)
        return None
    return NARRow(lt.model, codec, frontend, recognizer)


def model_frontend(nar_dir: Optional[str], aligner_dir: Optional[str], aligner_record: Optional[dict]):
    """(TextFrontend, where its settings come from): the NAR's config.json "frontend" (the models' own front
    end, as tts.synthesize loads it), else the aligner's record, else the default settings."""
    from data_prep.frontend import TextFrontend
    meta, source = None, "the default TextFrontend settings (no --nar config.json)"
    if nar_dir and (Path(nar_dir) / CONFIG_FILE).is_file():
        rec, _ = read_model_config(nar_dir, "NAR model")
        if rec.get("frontend"):
            meta, source = rec, f"the NAR's config.json ({portable_path(nar_dir)})"
    if meta is None and aligner_record and aligner_record.get("frontend"):
        meta, source = aligner_record, f"the aligner's config.json ({portable_path(aligner_dir)})"
    return TextFrontend.from_record((meta or {}).get("frontend") or {}, source), source
