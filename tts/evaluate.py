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
speechmos is installed (on ``--dnsmos-items`` items, default 16, evenly spread: it costs 0.45 s a
clip), and the codec metrics of ``codec.evaluation.metrics`` (PESQ, STOI, SI-SDR, mel) for the
resynthesis row against the recording. With ``--aligner DIR`` (the recipe's exp/aligner/model, a CTC
phoneme recognizer trained by ``tts.align`` on the training speakers only) every row also gets a
phoneme error rate (PER) against the pronounced phones of the item's text from the models' own text
front end (the NAR's config.json "frontend"). Per item: the WER's substitutions, deletions and
insertions, each row's duration, and the duration ratio TTS / ground truth. Targets: TTS WER
<= 1.5x resynthesis WER, TTS PER <= 1.5x resynthesis PER, TTS SIM >= different-speaker floor + 0.1,
median duration ratio in 0.8-1.25, TTS median F0 within 2 semitones of the prompt's on >= 80 % of the
items.

Pitch (``tts.evaluation.pitch``, Praat tracks through data_prep.pitch): each output's median F0 and F0
range against its prompt's, in semitones, and the share of items within 2 semitones; the rows on the
recording's time axis (resynthesis, ground-truth codebook 1 + NAR) also get the F0 error in cents,
GPE and VDE against the recording. Floors and ceilings (``tts.evaluation.voices``): the ground-truth
row is the same-speaker ceiling; the different-speaker floor (SIM and pitch: each prompt against the
other test speakers' recordings), the codec-domain floor (SIM against their codec resynthesis) and,
with ``--train-manifest``, the nearest training voice (SIM of each prompt to its most similar
training speaker). WER, PER, SIM and the pitch rows carry bootstrap 95 % intervals over items
(``tts.evaluation.bootstrap``: 1000 resamples, seed 0). ``--jobs N`` scores interleaved shares of
the items in N worker processes. Writes ``report.json``, ``report.md``, ``scores.png``, ``spectrograms.png``, ``pitch_spectrograms.png`` and example
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
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from core.logs import setup_logging

from .evaluation.bootstrap import mean_ci, ratio_ci
from .evaluation.inputs import EvalItem, load_items, tts_n_q
from .evaluation.items import CODEC_METRICS, ROWS, Row, Scored, score_items
from .evaluation.pitch import ALIGNED_ROWS, floor_summary, pitch_target, row_summary
from .evaluation.scoring import EvalReport, RowScores, duration_summary, mean, phone_scores, targets, word_errors
from .evaluation.voices import cross_speaker_means, nearest_voice, pick_training_utterances

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "evaluate", "load_items", "main", "ROWS", "CODEC_METRICS", "Row"]

LMMode = Literal["test_texts", "general"]


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
    train_manifest: Optional[str] = None    # training manifest: the nearest-training-voice row (None: no row)
    jobs: int = 1                       # worker processes scoring shares of the items (each loads its tools)
    dnsmos_items: Optional[int] = 16    # DNSMOS on this many items, evenly spread (None: all; 0.45 s a clip)


def evaluate(items: list[EvalItem], cfg: EvalConfig = EvalConfig(), out_dir: Optional[str | Path] = None
             ) -> EvalReport:
    """Score every row on ``items``; resynthesised and NAR-row audio is written to ``out_dir/<row>/``."""
    t0 = time.time()
    texts = [it.text for it in items]
    speakers = [it.speaker for it in items]
    picks = (pick_training_utterances(cfg.train_manifest, exclude=[s for s in speakers if s])
             if cfg.train_manifest else None)
    sc = _merge(_score(cfg, items, out_dir, picks), len(items))
    ref_phones = ([rec["ref_phones"].split() for rec in sc.recs]
                  if sc.recs and all("ref_phones" in rec for rec in sc.recs) else None)
    rows: dict[str, RowScores] = {}
    for row in sc.rows:
        scores = _row_scores(texts, sc, row, ref_phones)
        if scores is None:
            log.warning("row %s: no audio for any item; left out", row)
            continue
        rows[row] = scores
    floors = _floors(speakers, sc)
    floor = floors.get("different_speaker", {}).get("sim")
    durations = duration_summary(sc.recs)
    t = targets(rows, floor, durations)
    if "sim" in t:
        t["sim"]["ci"] = rows["tts"].ci.get("sim")
    pt = pitch_target(rows["tts"].pitch if "tts" in rows else None)
    if pt:
        t["pitch"] = pt
    return EvalReport(rows=rows, sim_floor=floor, targets=t, items=sc.recs, seconds=round(time.time() - t0, 1),
                      setting={**sc.setting, "jobs": cfg.jobs}, durations=durations, floors=floors)


def _score(cfg: EvalConfig, items: list[EvalItem], out_dir, picks) -> list[Scored]:
    """score_items on all items here, or on `cfg.jobs` interleaved shares in worker processes (spawned:
    a forked torch process can hang), the training speakers shared out the same way."""
    n, jobs = len(items), max(1, min(cfg.jobs, len(items)))
    if jobs == 1:
        return [score_items(cfg, items, range(n), out_dir, picks)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    spk = sorted(picks or {})
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=setup_logging) as pool:
        futs = [pool.submit(score_items, cfg, items, range(j, n, jobs), out_dir,
                            {s: picks[s] for s in spk[j::jobs]} if picks else None) for j in range(jobs)]
        return [f.result() for f in futs]


def _merge(parts: list[Scored], n: int) -> Scored:
    """One Scored in item order from the workers' shares."""
    first = parts[0]
    m = Scored(list(range(n)), [None] * n, [None] * n, [None] * n, rows=[r for r in ROWS if r in first.rows],
               setting=first.setting)
    m.emb = {r: [None] * n for r in m.rows}
    m.f0 = {r: [None] * n for r in m.rows}
    for p in parts:
        m.train_emb.update(p.train_emb)
        for k, i in enumerate(p.indices):
            m.recs[i], m.prompt_emb[i], m.prompt_f0[i] = p.recs[k], p.prompt_emb[k], p.prompt_f0[k]
            for r in m.rows:
                m.emb[r][i], m.f0[r][i] = p.emb[r][k], p.f0[r][k]
    return m


def _row_scores(texts: list[str], sc: Scored, row: str, ref_phones) -> Optional[RowScores]:
    """The row's WER, PER, SIM, DNSMOS, codec metrics and pitch from its items' records (each item's WER and
    PER written back to its record), with bootstrap intervals; logged. None when no item has audio."""
    from .evaluation.asr import word_error_rate
    recs = [rec[row] for rec in sc.recs]
    have, n = sum("seconds" in r for r in recs), len(recs)
    if have == 0:
        return None
    hyps = [r.get("hyp", "") for r in recs]
    w = word_error_rate(texts, hyps)
    for i, v in enumerate(w.per_item):
        recs[i]["wer"], recs[i]["wer_errors"] = v, word_errors(texts[i], hyps[i])
    errs = [sum(r["wer_errors"][k] for k in ("substitutions", "deletions", "insertions")) for r in recs]
    ci = {"wer": ratio_ci(errs, [r["wer_errors"]["ref_words"] for r in recs])}
    per = per_detail = None
    if ref_phones is not None:
        per, per_items, per_detail = phone_scores(ref_phones, [r["phones"].split() if r.get("phones") else []
                                                               for r in recs])
        for r, v in zip(recs, per_items):
            r["per"] = v
        keep = [i for i, ph in enumerate(ref_phones) if ph]
        ci["per"] = ratio_ci([per_items[i] * len(ref_phones[i]) for i in keep], [len(ref_phones[i]) for i in keep])
    sims = [r["sim"] for r in recs if "sim" in r]
    ci["sim"] = mean_ci(sims)
    dns = [r["dnsmos"] for r in recs if "dnsmos" in r]
    cms = [r["codec_metrics"] for r in recs if "codec_metrics" in r]
    refs = sc.f0.get("ground_truth") if row in ALIGNED_ROWS else None
    scores = RowScores(
        name=row, n=have, missing=n - have, wer=w.wer,
        wer_detail={"substitutions": w.substitutions, "deletions": w.deletions,
                    "insertions": w.insertions, "ref_words": w.ref_words},
        per=per, per_detail=per_detail or {}, seconds=mean([r.get("seconds") for r in recs]),
        sim=mean(sims), sim_std=float(np.std(sims)) if sims else None,
        dnsmos={k: mean([d[k] for d in dns]) for k in dns[0]} if dns else {},
        codec_metrics={k: mean([c[k] for c in cms]) for k in cms[0]} if cms else {}, ci=ci,
        pitch=row_summary([r.get("pitch") for r in recs], sc.f0[row] if refs else (), refs or ()))
    log.info("%s: WER %.3f (S %d, D %d, I %d), PER %s, SIM %s, F0 within 2 st of the prompt %s (%d items, %d missing)",
             row, w.wer, w.substitutions, w.deletions, w.insertions, "n/a" if per is None else f"{per:.3f}",
             "n/a" if scores.sim is None else f"{scores.sim:.3f}",
             "n/a" if scores.pitch.get("within_2st") is None else f"{scores.pitch['within_2st']:.2f}", have, n - have)
    return scores


def _floors(speakers: list, sc: Scored) -> dict:
    """The reference rows beside the ceiling (tts.evaluation.voices, tts.evaluation.pitch): each prompt against
    other speakers' recordings (SIM and pitch), against their codec resynthesis (SIM), and against its
    nearest training voice (SIM); per-item values with intervals."""
    floors: dict = {}
    if "ground_truth" in sc.emb:
        v = cross_speaker_means(speakers, sc.prompt_emb, sc.emb["ground_truth"])
        floors["different_speaker"] = {"sim": mean(v), "sim_ci": mean_ci(v), "per_item": v,
                                       "pitch": floor_summary(speakers, sc.prompt_f0, sc.f0["ground_truth"])}
    if "resynthesis" in sc.emb:
        v = cross_speaker_means(speakers, sc.prompt_emb, sc.emb["resynthesis"])
        floors["codec_different_speaker"] = {"sim": mean(v), "sim_ci": mean_ci(v), "per_item": v}
    if sc.train_emb:
        near = [nearest_voice(p, sc.train_emb) for p in sc.prompt_emb]
        v = [s for s, _ in near]
        floors["nearest_training_voice"] = {
            "sim": mean(v), "sim_ci": mean_ci(v), "per_item": v, "speakers": [spk for _, spk in near],
            "n_training_speakers": len(sc.train_emb),
            "recordings_per_speaker": max(len(e) for e in sc.train_emb.values())}
    return {k: v for k, v in floors.items() if v["sim"] is not None or v.get("pitch", {}).get("n")}


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
    ap.add_argument("--dnsmos-items", type=int, default=16,
                    help="DNSMOS (0.45 s a clip) on this many items, evenly spread (default 16; 0 = all)")
    ap.add_argument("--examples", type=int, default=3, help="example items copied to OUT/examples")
    ap.add_argument("--train-manifest", default=None,
                    help="training manifest: the row 'nearest training voice' (each prompt's similarity to its most "
                         "similar training speaker, a few recordings each)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes scoring shares of the items (default: up to 2; 1 = in this process)")
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
                         examples=a.examples, nar=a.nar, aligner=a.aligner, train_manifest=a.train_manifest,
                         jobs=max(1, a.jobs), dnsmos_items=a.dnsmos_items or None)
        report = evaluate(items, cfg, out_dir=a.out)
    except (FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 2
    write_report(report, items, a.out, examples=a.examples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
