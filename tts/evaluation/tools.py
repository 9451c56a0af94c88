"""What scores tts.evaluate's rows (the ASR, the speaker encoder, codec.evaluation.metrics, the optional codec,
phoneme recognizer, text front end and NAR row), loaded once, and the report's description of them."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from core.io import portable_path

from .nar import NARRow, load_nar_row, model_frontend

log = logging.getLogger(__name__)

__all__ = ["Tools", "load_tools", "describe_setting"]


@dataclass
class Tools:
    """What scores the rows: the ASR, the speaker encoder, codec.evaluation.metrics (or None), and the optional codec,
    phoneme recognizer (PER), text front end and NAR row."""
    asr: object
    spk: object
    metrics: object
    use_dnsmos: bool
    codec: object = None
    n_q: Optional[int] = None
    recognizer: object = None
    frontend: object = None
    fe_source: Optional[str] = None
    nar_row: Optional[NARRow] = None


def load_tools(cfg, texts: list[str]) -> Tools:
    from .asr import load_asr
    from .speaker import SpeakerEncoder
    asr = load_asr(cfg.asr_model, lm_texts=texts if (cfg.lm == "test_texts" and not cfg.asr_model) else None)
    spk = SpeakerEncoder()
    metrics_mod = None
    if cfg.dnsmos or cfg.codec_metrics:
        try:
            import codec.evaluation.metrics as metrics_mod
        except ImportError:  # pragma: no cover - codec.evaluation.metrics is part of the project
            metrics_mod = None
    use_dnsmos = bool(cfg.dnsmos and metrics_mod is not None and metrics_mod.available_metrics().get("dnsmos"))
    if cfg.dnsmos and not use_dnsmos:
        log.warning("DNSMOS skipped: speechmos/onnxruntime/librosa are not installed (pip install 'ndvq[eval]')")
    tools = Tools(asr, spk, metrics_mod, use_dnsmos, n_q=cfg.n_q)
    if cfg.codec:
        from codec.api import Codec
        tools.codec = Codec.from_pretrained(cfg.codec)
        tools.n_q = tools.n_q or tools.codec.n_q
        if not 1 <= tools.n_q <= tools.codec.n_q:
            raise ValueError(f"--n-q {tools.n_q} is outside 1..{tools.codec.n_q} of codec {cfg.codec}")
    if cfg.aligner:
        from tts.align.recognizer import PhonemeRecognizer
        try:
            tools.recognizer = PhonemeRecognizer.from_pretrained(cfg.aligner)
        except RuntimeError as e:          # weights that do not fit their config.json (an older format)
            raise ValueError(f"--aligner {cfg.aligner}: cannot load the recognizer: "
                             f"{str(e).splitlines()[0]} {' '.join(str(e).splitlines()[1:2]).strip()}") from e
    if tools.recognizer is not None or (cfg.nar and tools.codec is not None):
        tools.frontend, tools.fe_source = model_frontend(
            cfg.nar, cfg.aligner, tools.recognizer.record if tools.recognizer is not None else None)
    tools.nar_row = load_nar_row(cfg.nar, tools.codec, tools.frontend, tools.recognizer)
    return tools


def describe_setting(cfg, tools: Tools, items: list) -> dict:
    """How the evaluation was made (scorers, models, front end), for the report."""
    asr, metrics_mod = tools.asr, tools.metrics
    setting = {"asr": asr.name, "asr_constrained": bool(getattr(asr, "constrained", False)),
               "asr_oov": list(getattr(asr, "oov", [])), "speaker_encoder": tools.spk.name,
               "n_items": len(items), "n_speakers": len({it.speaker for it in items}),
               "codec": _named(cfg.codec), "n_q": tools.n_q, "dnsmos": tools.use_dnsmos,
               "metric_versions": metrics_mod.package_versions() if metrics_mod else {}}
    if tools.nar_row is not None:
        nar_cfg = tools.nar_row.model.cfg
        setting.update(nar=_named(cfg.nar), nar_n_q=int(nar_cfg.n_q), nar_prompt_mode=nar_cfg.prompt_mode)
    if tools.recognizer is not None:
        training = tools.recognizer.record.get("training") or {}
        setting.update(aligner=_named(cfg.aligner), aligner_dev_per=(training.get("final_valid") or {}).get("per"),
                       aligner_steps=training.get("steps"), aligner_train_data=_named(training.get("train_manifest")
                                                                                     or training.get("train_dump")))
    if tools.frontend is not None:
        setting["frontend"] = tools.fe_source
    return setting


def _named(path: Optional[str]) -> Optional[str]:
    """A model or data path as the report names it: relative to the folder the evaluation runs in (the
    recipe's), so a report copied elsewhere names no machine path."""
    return portable_path(path) if path else path
