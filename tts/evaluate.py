"""TTS evaluation (recipe stage 8): ground truth, codec resynthesis and TTS output, one scoring stack.

    python -m tts.evaluate --list exp/synth/list.jsonl --codec exp/codec/model --nar exp/nar/model \
        --out exp/eval
    python -m tts.evaluate exp/synth/wavs --out exp/eval_x      # any folder of outputs (see below)

Rows, each scored on the same items by the same ASR, speaker encoder and metrics:

* ``ground_truth``: the target utterance's recording;
* ``resynthesis``: that recording through the codec at the TTS's number of codebooks (n_q);
* ``gt_cb1_nar`` (with ``--codec`` and ``--nar``): the recording's own codebook 1 (codec), codebooks
  2..n_q filled by the NAR from the prompt's codes and the phonemes the synthesizer gives it, decoded
  at the recording's scale: the NAR alone, so resynthesis -> this row is the NAR's loss and this row
  -> tts the AR's;
* ``tts``: the zero-shot output for (prompt, target text).

Scores: WER (``tts.evaluation.asr``: pocketsphinx with an LM built from the evaluated sentences unless
``--lm general`` or ``--asr-model DIR``), speaker similarity to the prompt (``tts.evaluation.speaker``; on the
ground-truth row this is two different utterances of the same speaker, the *ceiling*; a
different-speaker *floor* pairs each prompt with other speakers' recordings), DNSMOS where
speechmos is installed, and the codec metrics of ``codec.evaluation.metrics`` (PESQ, STOI, SI-SDR, mel) for the
resynthesis row against the recording. With ``--aligner DIR`` (the recipe's exp/aligner/model, a CTC
phoneme recognizer trained by ``tts.align`` on the training speakers only) every row also gets a
phoneme error rate (PER) against the pronounced phones of the item's text from the models' own text
front end (the NAR's config.json "frontend"). Per item: the WER's substitutions, deletions and
insertions, each row's duration, and the duration ratio TTS / ground truth. Targets: TTS WER
<= 1.5x resynthesis WER, TTS PER <= 1.5x resynthesis PER, TTS SIM >= different-speaker floor + 0.1,
median duration ratio in 0.8-1.25. Writes ``report.json``, ``report.md``, ``scores.png``, ``spectrograms.png`` and example
wavs (``examples/``) to ``--out`` (``tts.evaluation.report``).

Input: ``--list`` is stage 7's JSONL (``tts.zeroshot_list``: id, text, ref_wav, prompt_wav,
prompt_text, out_wav). A positional folder of outputs replaces each item's ``out_wav`` by
``FOLDER/<id>.wav``; given a folder alone, the list is FOLDER/list.jsonl or FOLDER/../list.jsonl if
present, else the synthesizer's own ``FOLDER/results.jsonl`` (``tts.synthesize --list``), else each ``<id>.wav`` is paired with ``<id>.txt`` / ``<id>.lab`` (text) and, if present,
``<id>.ref.wav`` / ``<id>.prompt.wav``; rows without audio are left out.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from core.logs import setup_logging
from data_prep.audio import save_audio

from .evaluation.inputs import EvalItem, load_items, load_wav, tts_n_q
from .evaluation.nar import NARRow, load_nar_row, model_frontend
from .evaluation.scoring import (EvalReport, RowScores, duration_summary, mean, phone_scores, sim_floor, speech_seconds,
                           targets, word_errors)

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "evaluate", "load_items", "main", "ROWS"]

Row = Literal["ground_truth", "resynthesis", "gt_cb1_nar", "tts"]
ROWS: tuple[Row, ...] = ("ground_truth", "resynthesis", "gt_cb1_nar", "tts")
LMMode = Literal["test_texts", "general"]
CODEC_METRICS = ("pesq", "stoi", "si_sdr", "mel")


@dataclass
class EvalConfig:
    codec: Optional[str] = None         # codec dir for the resynthesis row (None: no such row)
    n_q: Optional[int] = None           # codebooks for resynthesis (None: the TTS's, else all)
    asr_model: Optional[str] = None     # local transformers ASR dir (None: pocketsphinx)
    lm: LMMode = "test_texts"
    dnsmos: bool = True                 # when speechmos is installed
    codec_metrics: bool = True
    examples: int = 3
    nar: Optional[str] = None           # exported NAR dir: the "ground-truth codebook 1 + NAR" row (with codec)
    aligner: Optional[str] = None       # tts.align recognizer dir: PER on every row (None: no PER)


@dataclass
class _Tools:
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


@dataclass
class _Run:
    """One evaluation's state: its items, tools, per-item records and embeddings."""
    items: list[EvalItem]
    cfg: EvalConfig
    tools: _Tools
    out: Optional[Path]
    texts: list[str]
    per_item: list[dict]
    ref_phones: Optional[list[list[str]]] = None
    prompt_emb: list[Optional[np.ndarray]] = field(default_factory=list)
    gt_emb: list[Optional[np.ndarray]] = field(default_factory=list)


@dataclass
class _RowAudio:
    """What one row's items gave, in item order (an item without audio: an empty hypothesis)."""
    hyps: list[str] = field(default_factory=list)
    phones: list[list[str]] = field(default_factory=list)
    sims: list[float] = field(default_factory=list)
    dns: list[dict] = field(default_factory=list)
    cms: list[dict] = field(default_factory=list)
    secs: list[float] = field(default_factory=list)
    have: int = 0


def _load_tools(cfg: EvalConfig, texts: list[str]) -> _Tools:
    from .evaluation.asr import load_asr
    from .evaluation.speaker import SpeakerEncoder
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
    tools = _Tools(asr, spk, metrics_mod, use_dnsmos, n_q=cfg.n_q)
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
    tools.nar_row = load_nar_row(cfg.nar, tools.codec, tools.frontend)
    return tools


def evaluate(items: list[EvalItem], cfg: EvalConfig = EvalConfig(), out_dir: Optional[str | Path] = None
             ) -> EvalReport:
    """Score every row on ``items``; resynthesised and NAR-row audio is written to ``out_dir/<row>/``."""
    from core.progress import progress

    t0 = time.time()
    texts = [it.text for it in items]
    tools = _load_tools(cfg, texts)
    run = _Run(items, cfg, tools, Path(out_dir) if out_dir else None, texts,
               [{"id": it.id, "speaker": it.speaker, "text": it.text} for it in items])
    if tools.recognizer is not None:
        from tts.align.recognizer import pronounced
        run.ref_phones = [pronounced(seq) for seq in tools.frontend.phonemize(texts)]
        for rec, ph in zip(run.per_item, run.ref_phones):
            rec["ref_phones"] = " ".join(ph)
    for it in progress(items, desc="prompts", unit="utt", leave=False):
        a = load_wav(it.prompt_wav)
        run.prompt_emb.append(tools.spk.embed(*a) if a is not None else None)

    rows: dict[str, RowScores] = {}
    for row in ROWS:
        if row == "resynthesis" and tools.codec is None or row == "gt_cb1_nar" and tools.nar_row is None:
            continue
        acc = _RowAudio()
        for i, it in enumerate(progress(items, desc=row, unit="utt", leave=False)):
            rec = run.per_item[i].setdefault(row, {})
            a, ref = _row_audio(run, row, it, rec)
            _score_item(run, row, i, a, ref, rec, acc)
        if acc.have == 0:
            log.warning("row %s: no audio for any item; left out", row)
            continue
        rows[row] = _row_scores(run, row, acc)

    floor = sim_floor(items, run.prompt_emb, run.gt_emb)
    durations = duration_summary(run.per_item)
    setting = _setting(run)
    return EvalReport(rows=rows, sim_floor=floor, targets=targets(rows, floor, durations), items=run.per_item,
                      seconds=round(time.time() - t0, 1), setting=setting, durations=durations)


def _row_audio(run: _Run, row: Row, it: EvalItem, rec: dict):
    """(audio, the recording) of one item in one row: read (ground truth, TTS) or made from the recording
    (resynthesis, the NAR row; written to out/<row>/<id>.wav)."""
    if row == "ground_truth":
        return load_wav(it.ref_wav), None
    if row == "tts":
        return load_wav(it.out_wav), None
    codec, ref, a = run.tools.codec, load_wav(it.ref_wav), None
    if ref is not None and row == "resynthesis":
        res = codec.encode(ref[0], ref[1], n_q=run.tools.n_q)
        a = (codec.decode(res)[0, 0].numpy(), codec.sample_rate)
    elif ref is not None:
        a, why = run.tools.nar_row.audio(it, ref)
        if a is None:
            log.warning("%s: %s row left out for this item: %s", it.id, row, why)
    if a is not None and run.out is not None:
        path = run.out / row / f"{it.id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_audio(path, a[0], a[1])
        rec["wav"] = str(path)
    return a, ref


def _score_item(run: _Run, row: Row, i: int, a, ref, rec: dict, acc: _RowAudio) -> None:
    """Transcript, phones, similarity to the prompt, DNSMOS and (resynthesis) codec metrics of one item."""
    from .evaluation.speaker import cosine
    tools = run.tools
    if row == "ground_truth":
        run.gt_emb.append(None)
    if a is None:
        acc.hyps.append("")
        acc.phones.append([])
        rec["missing"] = True
        return
    acc.have += 1
    wav, sr = a
    rec["seconds"] = len(wav) / sr
    rec["speech_seconds"] = speech_seconds(wav, sr)
    acc.secs.append(rec["seconds"])
    hyp = tools.asr.transcribe(wav, sr)
    acc.hyps.append(hyp)
    rec["hyp"] = hyp
    if tools.recognizer is not None:
        acc.phones.append(tools.recognizer.transcribe(wav, sr))
        rec["phones"] = " ".join(acc.phones[-1])
    emb = tools.spk.embed(wav, sr)
    if row == "ground_truth":
        run.gt_emb[-1] = emb
    if run.prompt_emb[i] is not None:
        rec["sim"] = cosine(run.prompt_emb[i], emb)
        acc.sims.append(rec["sim"])
    if tools.use_dnsmos:
        rec["dnsmos"] = tools.metrics.dnsmos(wav, sr)
        acc.dns.append(rec["dnsmos"])
    if row == "resynthesis" and run.cfg.codec_metrics and tools.metrics is not None:
        rec["codec_metrics"] = tools.metrics.score_pair(ref[0], _resample_to(wav, sr, ref[1]), ref[1],
                                                        metrics=CODEC_METRICS)
        acc.cms.append(rec["codec_metrics"])


def _row_scores(run: _Run, row: Row, acc: _RowAudio) -> RowScores:
    """The row's WER (and PER), with each item's share in its record; logged."""
    from .evaluation.asr import word_error_rate
    texts, per_item, n = run.texts, run.per_item, len(run.items)
    w = word_error_rate(texts, acc.hyps)
    for i, v in enumerate(w.per_item):
        per_item[i][row]["wer"] = v
        per_item[i][row]["wer_errors"] = word_errors(texts[i], acc.hyps[i])
    per = per_detail = None
    if run.ref_phones is not None:
        per, per_items, per_detail = phone_scores(run.ref_phones, acc.phones)
        for i, v in enumerate(per_items):
            per_item[i][row]["per"] = v
    sims, dns, cms = acc.sims, acc.dns, acc.cms
    scores = RowScores(
        name=row, n=acc.have, missing=n - acc.have, wer=w.wer,
        wer_detail={"substitutions": w.substitutions, "deletions": w.deletions,
                    "insertions": w.insertions, "ref_words": w.ref_words},
        per=per, per_detail=per_detail or {}, seconds=mean(acc.secs),
        sim=mean(sims), sim_std=float(np.std(sims)) if sims else None,
        dnsmos={k: mean([d[k] for d in dns]) for k in dns[0]} if dns else {},
        codec_metrics={k: mean([c[k] for c in cms]) for k in cms[0]} if cms else {})
    log.info("%s: WER %.3f (S %d, D %d, I %d), PER %s, SIM %s (%d items, %d missing)", row, w.wer,
             w.substitutions, w.deletions, w.insertions, "n/a" if per is None else f"{per:.3f}",
             "n/a" if scores.sim is None else f"{scores.sim:.3f}", acc.have, n - acc.have)
    return scores


def _setting(run: _Run) -> dict:
    """How the evaluation was made (scorers, models, front end), for the report."""
    cfg, tools, items = run.cfg, run.tools, run.items
    asr, metrics_mod = tools.asr, tools.metrics
    setting = {"asr": asr.name, "asr_constrained": bool(getattr(asr, "constrained", False)),
               "asr_oov": list(getattr(asr, "oov", [])), "speaker_encoder": tools.spk.name,
               "n_items": len(items), "n_speakers": len({it.speaker for it in items}),
               "codec": cfg.codec, "n_q": tools.n_q, "dnsmos": tools.use_dnsmos,
               "metric_versions": metrics_mod.package_versions() if metrics_mod else {}}
    if tools.nar_row is not None:
        nar_cfg = tools.nar_row.model.cfg
        setting.update(nar=cfg.nar, nar_n_q=int(nar_cfg.n_q), nar_prompt_mode=nar_cfg.prompt_mode)
    if tools.recognizer is not None:
        training = tools.recognizer.record.get("training") or {}
        setting.update(aligner=cfg.aligner, aligner_dev_per=(training.get("final_valid") or {}).get("per"),
                       aligner_steps=training.get("steps"), aligner_train_data=training.get("train_manifest")
                       or training.get("train_dump"))
    if tools.frontend is not None:
        setting["frontend"] = tools.fe_source
    return setting


def _resample_to(wav: np.ndarray, sr: int, target: int) -> np.ndarray:
    from data_prep.audio import resample
    return wav if sr == target else resample(wav, sr, target)


# ----------------------------------------------------------------------------------- CLI
def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tts.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("outputs", nargs="?", default=None, help="folder of TTS outputs <id>.wav (optional with --list)")
    ap.add_argument("--list", default=None, help="stage 7's list.jsonl (tts.zeroshot_list)")
    ap.add_argument("--out", default="exp/eval", help="report directory (default exp/eval)")
    ap.add_argument("--codec", default=None, help="codec dir for the resynthesis row")
    ap.add_argument("--n-q", type=int, default=None, help="codebooks for resynthesis (default: the TTS's)")
    ap.add_argument("--nar", default=None, help="exported NAR dir: its n_q is the TTS's (default for --n-q); with --codec, the row "
                         "'ground-truth codebook 1 + NAR'")
    ap.add_argument("--aligner", default=None,
                    help="tts.align recognizer dir (the recipe's exp/aligner/model): phoneme error rate on every row")
    ap.add_argument("--asr-model", default=None, help="local Whisper / HuBERT-CTC transformers checkpoint dir")
    ap.add_argument("--lm", choices=["test_texts", "general"], default="test_texts",
                    help="pocketsphinx LM: built from the evaluated sentences (constrained), or the bundled one")
    ap.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS even if speechmos is installed")
    ap.add_argument("--examples", type=int, default=3, help="example items copied to OUT/examples")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: small sequential ops, and the machine may be shared)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    setup_logging(a.verbose)
    import torch
    torch.set_num_threads(max(1, a.threads))
    from .evaluation.report import write_report
    try:
        items = load_items(a.list, a.outputs)
        n_q = a.n_q or tts_n_q(a.nar)
        if a.aligner and not Path(a.aligner).is_dir():
            raise FileNotFoundError(f"--aligner {a.aligner}: no such directory (train it: recipe stage 4)")
        cfg = EvalConfig(codec=a.codec, n_q=n_q, asr_model=a.asr_model, lm=a.lm, dnsmos=not a.no_dnsmos,
                         examples=a.examples, nar=a.nar, aligner=a.aligner)
        report = evaluate(items, cfg, out_dir=a.out)
    except (FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 2
    write_report(report, items, a.out, examples=a.examples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
