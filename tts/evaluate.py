"""TTS evaluation (recipe stage 8): ground truth, codec resynthesis and TTS output, one scoring stack.

    python -m tts.evaluate --list exp/synth/list.jsonl --codec exp/codec/model --nar exp/nar/model \
        --out exp/eval
    python -m tts.evaluate exp/synth/wavs --out exp/eval_x      # any folder of outputs (see below)

Rows, each scored on the same items by the same ASR, speaker encoder and metrics:

* ``ground_truth``: the target utterance's recording;
* ``resynthesis``: that recording through the codec at the TTS's number of codebooks (n_q);
* ``tts``: the zero-shot output for (prompt, target text).

Scores: WER (``tts.asr``: pocketsphinx with an LM built from the evaluated sentences unless
``--lm general`` or ``--asr-model DIR``), speaker similarity to the prompt (``tts.speaker``; on the
ground-truth row this is two different utterances of the same speaker, the *ceiling*; a
different-speaker *floor* pairs each prompt with other speakers' recordings), DNSMOS where
speechmos is installed, and the codec metrics of ``codec.metrics`` (PESQ, STOI, SI-SDR, mel) for the
resynthesis row against the recording. Targets: TTS WER <= 2x resynthesis WER, TTS SIM >= 0.8x the
ceiling. Writes ``report.json``, ``report.md``, ``scores.png``, ``spectrograms.png`` and example
wavs (``examples/``) to ``--out`` (``tts.eval_report``).

Input: ``--list`` is stage 7's JSONL (``tts.zeroshot_list``: id, text, ref_wav, prompt_wav,
prompt_text, out_wav). A positional folder of outputs replaces each item's ``out_wav`` by
``FOLDER/<id>.wav``; given a folder alone, the list is FOLDER/list.jsonl or FOLDER/../list.jsonl if
present, else the synthesizer's own ``FOLDER/results.jsonl`` (``tts.synthesize --list``), else each ``<id>.wav`` is paired with ``<id>.txt`` / ``<id>.lab`` (text) and, if present,
``<id>.ref.wav`` / ``<id>.prompt.wav``; rows without audio are left out.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np

from data_prep.audio import AudioError, load_audio, save_audio
from data_prep.fileio import path_from_file, read_jsonl, setup_logging

log = logging.getLogger(__name__)

Row = Literal["ground_truth", "resynthesis", "tts"]
ROWS: tuple[Row, ...] = ("ground_truth", "resynthesis", "tts")
LMMode = Literal["test_texts", "general"]
WER_TARGET_RATIO = 2.0      # TTS WER <= 2x resynthesis WER
SIM_TARGET_RATIO = 0.8      # TTS SIM >= 0.8x same-speaker ceiling
CODEC_METRICS = ("pesq", "stoi", "si_sdr", "mel")


@dataclass
class EvalItem:
    id: str
    text: str
    speaker: Optional[str] = None
    ref_wav: Optional[str] = None
    prompt_wav: Optional[str] = None
    prompt_text: Optional[str] = None
    out_wav: Optional[str] = None


@dataclass
class EvalConfig:
    codec: Optional[str] = None         # codec dir for the resynthesis row (None: no such row)
    n_q: Optional[int] = None           # codebooks for resynthesis (None: the TTS's, else all)
    asr_model: Optional[str] = None     # local transformers ASR dir (None: pocketsphinx)
    lm: LMMode = "test_texts"
    dnsmos: bool = True                 # when speechmos is installed
    codec_metrics: bool = True
    examples: int = 3


@dataclass
class RowScores:
    name: str
    n: int                               # items with audio for this row
    missing: int                         # items without audio (counted as all-deletion for WER)
    wer: Optional[float] = None
    wer_detail: dict = field(default_factory=dict)
    sim: Optional[float] = None          # mean cosine to the prompt
    sim_std: Optional[float] = None
    dnsmos: dict = field(default_factory=dict)         # mean ovrl/sig/bak/p808
    codec_metrics: dict = field(default_factory=dict)  # mean pesq/stoi/si_sdr/mel vs the recording


@dataclass
class EvalReport:
    rows: dict[str, RowScores]
    sim_floor: Optional[float]           # prompt vs other speakers' recordings
    targets: dict
    setting: dict
    items: list[dict]                    # per item, per row: hyp, wer, sim, dnsmos, ...
    seconds: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = {k: asdict(v) for k, v in self.rows.items()}
        return d


# ----------------------------------------------------------------------------------- inputs
def load_items(list_path: Optional[str | Path] = None, outputs: Optional[str | Path] = None) -> list[EvalItem]:
    """Items from a stage-7 list and/or a folder of outputs (see module docstring)."""
    out_dir = Path(outputs) if outputs else None
    if out_dir is not None and not out_dir.is_dir():
        raise FileNotFoundError(f"outputs folder {out_dir} does not exist")
    if list_path is None and out_dir is not None:
        for cand in (out_dir / "list.jsonl", out_dir.parent / "list.jsonl"):
            if cand.is_file():
                list_path = cand
                break
    items: list[EvalItem] = []
    if list_path is None and out_dir is not None and (out_dir / "results.jsonl").is_file():
        items = _items_from_results(out_dir)
    elif list_path is not None:
        for n, r in enumerate(read_jsonl(list_path), 1):
            if not r.get("id") or not r.get("text"):
                raise ValueError(f"{list_path}:{n}: a list row needs 'id' and 'text'")
            here = Path(list_path).parent       # relative paths: from the list's folder upwards
            ref, prm, outw = (path_from_file(r[k], here) if r.get(k) else None for k in ("ref_wav", "prompt_wav", "out_wav"))
            it = EvalItem(id=str(r["id"]), text=str(r["text"]), speaker=r.get("speaker"),
                          ref_wav=ref, prompt_wav=prm, prompt_text=r.get("prompt_text"), out_wav=outw)
            if out_dir is not None:
                it.out_wav = str(out_dir / f"{it.id}.wav")
            items.append(it)
    else:
        if out_dir is None:
            raise ValueError("give --list, a folder of outputs, or both")
        for wav in sorted(out_dir.glob("*.wav")):
            if wav.name.endswith((".ref.wav", ".prompt.wav")):
                continue
            stem = wav.name[: -len(".wav")]
            txt = next((p for p in (out_dir / f"{stem}.txt", out_dir / f"{stem}.lab") if p.is_file()), None)
            if txt is None:
                log.warning("%s: no %s.txt or .lab beside it; left out", wav, stem)
                continue
            ref, prm = out_dir / f"{stem}.ref.wav", out_dir / f"{stem}.prompt.wav"
            items.append(EvalItem(id=stem, text=txt.read_text(encoding="utf-8").strip(), out_wav=str(wav),
                                  ref_wav=str(ref) if ref.is_file() else None,
                                  prompt_wav=str(prm) if prm.is_file() else None))
    if not items:
        raise ValueError(f"nothing to evaluate (list {list_path}, folder {out_dir})")
    return items


def _items_from_results(out_dir: Path) -> list[EvalItem]:
    """A `tts.synthesize --list ... --out-dir FOLDER` folder: its own results.jsonl (id, text, wav,
    prompt_wav, prompt_text); an item that failed to synthesize counts as missing audio."""
    items = []
    for n, r in enumerate(read_jsonl(out_dir / "results.jsonl"), 1):
        if not r.get("id") or not r.get("text"):
            log.warning("%s:%d: no id or text (a failed item of an older synthesizer); left out",
                        out_dir / "results.jsonl", n)
            continue
        wav = out_dir / Path(str(r.get("wav") or f"{r['id']}.wav")).name     # relative to the folder
        prm, ref = (path_from_file(r[k], out_dir) if r.get(k) else None for k in ("prompt_wav", "ref_wav"))
        items.append(EvalItem(id=str(r["id"]), text=str(r["text"]), speaker=r.get("speaker"),
                              prompt_wav=prm, prompt_text=r.get("prompt_text"),
                              ref_wav=ref, out_wav=None if "error" in r else str(wav)))
    return items


def tts_n_q(model_dir: Optional[str | Path]) -> Optional[int]:
    """n_q of an exported TTS model directory (config.json's model.n_q), or None."""
    if not model_dir:
        return None
    cfg_path = Path(model_dir) / "config.json"
    if not cfg_path.is_file():
        return None
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    for path in (("model", "n_q"), ("config", "model", "n_q"), ("n_q",)):
        node = cfg
        for k in path:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, int):
            return node
    return None


def _load(path: Optional[str]) -> Optional[tuple[np.ndarray, int]]:
    if not path or not Path(path).is_file():
        return None
    try:
        return load_audio(path)
    except AudioError as e:
        log.warning("%s", e)
        return None


# ----------------------------------------------------------------------------------- scoring
def _mean(xs: Sequence[Optional[float]]) -> Optional[float]:
    v = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def evaluate(items: list[EvalItem], cfg: EvalConfig = EvalConfig(), out_dir: Optional[str | Path] = None
             ) -> EvalReport:
    """Score every row on ``items``; resynthesised audio is written to ``out_dir/resynthesis/``."""
    from data_prep.progress import progress

    from .asr import load_asr, word_error_rate
    from .speaker import SpeakerEncoder, cosine

    t0 = time.time()
    out = Path(out_dir) if out_dir else None
    texts = [it.text for it in items]
    asr = load_asr(cfg.asr_model, lm_texts=texts if (cfg.lm == "test_texts" and not cfg.asr_model) else None)
    spk = SpeakerEncoder()
    metrics_mod = None
    if cfg.dnsmos or cfg.codec_metrics:
        try:
            from codec import metrics as metrics_mod
        except ImportError:  # pragma: no cover - codec.metrics is part of the project
            metrics_mod = None
    use_dnsmos = bool(cfg.dnsmos and metrics_mod is not None and metrics_mod.available_metrics().get("dnsmos"))
    if cfg.dnsmos and not use_dnsmos:
        log.warning("DNSMOS skipped: speechmos/onnxruntime/librosa are not installed (pip install 'ndvq[eval]')")

    codec = None
    n_q = cfg.n_q
    if cfg.codec:
        from codec.api import Codec
        codec = Codec.from_pretrained(cfg.codec)
        n_q = n_q or codec.n_q
        if not 1 <= n_q <= codec.n_q:
            raise ValueError(f"--n-q {n_q} is outside 1..{codec.n_q} of codec {cfg.codec}")

    per_item: list[dict] = [{"id": it.id, "speaker": it.speaker, "text": it.text} for it in items]
    prompt_emb: list[Optional[np.ndarray]] = []
    for it in progress(items, desc="prompts", unit="utt", leave=False):
        a = _load(it.prompt_wav)
        prompt_emb.append(spk.embed(*a) if a is not None else None)

    rows: dict[str, RowScores] = {}
    gt_emb: list[Optional[np.ndarray]] = []
    for row in ROWS:
        if row == "resynthesis" and codec is None:
            continue
        hyps, sims, dns, cms = [], [], [], []
        have = 0
        for i, it in enumerate(progress(items, desc=row, unit="utt", leave=False)):
            rec = per_item[i].setdefault(row, {})
            if row == "ground_truth":
                a = _load(it.ref_wav)
            elif row == "tts":
                a = _load(it.out_wav)
            else:
                ref = _load(it.ref_wav)
                a = None
                if ref is not None:
                    res = codec.encode(ref[0], ref[1], n_q=n_q)
                    a = (codec.decode(res)[0, 0].numpy(), codec.sample_rate)
                    if out is not None:
                        path = out / "resynthesis" / f"{it.id}.wav"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        save_audio(path, a[0], a[1])
                        rec["wav"] = str(path)
            if row == "ground_truth":
                gt_emb.append(None)
            if a is None:
                hyps.append("")
                rec["missing"] = True
                continue
            have += 1
            wav, sr = a
            hyp = asr.transcribe(wav, sr)
            hyps.append(hyp)
            rec["hyp"] = hyp
            emb = spk.embed(wav, sr)
            if row == "ground_truth":
                gt_emb[-1] = emb
            if prompt_emb[i] is not None:
                rec["sim"] = cosine(prompt_emb[i], emb)
                sims.append(rec["sim"])
            if use_dnsmos:
                rec["dnsmos"] = metrics_mod.dnsmos(wav, sr)
                dns.append(rec["dnsmos"])
            if row == "resynthesis" and cfg.codec_metrics and metrics_mod is not None:
                rec["codec_metrics"] = metrics_mod.score_pair(ref[0], _resample_to(wav, sr, ref[1]), ref[1],
                                                              metrics=CODEC_METRICS)
                cms.append(rec["codec_metrics"])
        if have == 0:
            log.warning("row %s: no audio for any item; left out", row)
            continue
        w = word_error_rate(texts, hyps)
        for i, v in enumerate(w.per_item):
            per_item[i][row]["wer"] = v
        rows[row] = RowScores(
            name=row, n=have, missing=len(items) - have, wer=w.wer,
            wer_detail={"substitutions": w.substitutions, "deletions": w.deletions,
                        "insertions": w.insertions, "ref_words": w.ref_words},
            sim=_mean(sims), sim_std=float(np.std(sims)) if sims else None,
            dnsmos={k: _mean([d[k] for d in dns]) for k in dns[0]} if dns else {},
            codec_metrics={k: _mean([c[k] for c in cms]) for k in cms[0]} if cms else {})
        log.info("%s: WER %.3f, SIM %s (%d items, %d missing)", row, w.wer,
                 "n/a" if rows[row].sim is None else f"{rows[row].sim:.3f}", have, len(items) - have)

    floor = _sim_floor(items, prompt_emb, gt_emb)
    report = EvalReport(rows=rows, sim_floor=floor, targets=_targets(rows), items=per_item,
                        seconds=round(time.time() - t0, 1),
                        setting={"asr": asr.name, "asr_constrained": bool(getattr(asr, "constrained", False)),
                                 "asr_oov": list(getattr(asr, "oov", [])), "speaker_encoder": spk.name,
                                 "n_items": len(items), "n_speakers": len({it.speaker for it in items}),
                                 "codec": cfg.codec, "n_q": n_q, "dnsmos": use_dnsmos,
                                 "metric_versions": metrics_mod.package_versions() if metrics_mod else {}})
    return report


def _resample_to(wav: np.ndarray, sr: int, target: int) -> np.ndarray:
    from data_prep.audio import resample
    return wav if sr == target else resample(wav, sr, target)


def _sim_floor(items: list[EvalItem], prompt_emb, gt_emb) -> Optional[float]:
    """Mean cosine of each prompt to the recordings of OTHER speakers (needs speaker labels)."""
    sims = []
    for i, a in enumerate(prompt_emb):
        for j, b in enumerate(gt_emb):
            if a is None or b is None or items[i].speaker is None or items[j].speaker is None:
                continue
            if items[i].speaker != items[j].speaker:
                sims.append(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))))
    return float(np.mean(sims)) if sims else None


def _targets(rows: dict[str, RowScores]) -> dict:
    t: dict = {}
    tts, rs, gt = rows.get("tts"), rows.get("resynthesis"), rows.get("ground_truth")
    if tts and rs and tts.wer is not None and rs.wer is not None:
        limit = WER_TARGET_RATIO * rs.wer
        t["wer"] = {"rule": f"TTS WER <= {WER_TARGET_RATIO:g} x resynthesis WER", "tts": tts.wer,
                    "resynthesis": rs.wer, "limit": limit, "ratio": tts.wer / rs.wer if rs.wer else None,
                    "met": bool(tts.wer <= limit)}
    if tts and gt and tts.sim is not None and gt.sim is not None:
        limit = SIM_TARGET_RATIO * gt.sim
        t["sim"] = {"rule": f"TTS SIM >= {SIM_TARGET_RATIO:g} x same-speaker ceiling", "tts": tts.sim,
                    "ceiling": gt.sim, "limit": limit, "ratio": tts.sim / gt.sim if gt.sim else None,
                    "met": bool(tts.sim >= limit)}
    return t


# ----------------------------------------------------------------------------------- CLI
def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tts.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("outputs", nargs="?", default=None, help="folder of TTS outputs <id>.wav (optional with --list)")
    ap.add_argument("--list", default=None, help="stage 7's list.jsonl (tts.zeroshot_list)")
    ap.add_argument("--out", default="exp/eval", help="report directory (default exp/eval)")
    ap.add_argument("--codec", default=None, help="codec dir for the resynthesis row")
    ap.add_argument("--n-q", type=int, default=None, help="codebooks for resynthesis (default: the TTS's)")
    ap.add_argument("--nar", default=None, help="exported NAR dir: its n_q is the TTS's (default for --n-q)")
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
    from .eval_report import write_report
    try:
        items = load_items(a.list, a.outputs)
        n_q = a.n_q or tts_n_q(a.nar)
        cfg = EvalConfig(codec=a.codec, n_q=n_q, asr_model=a.asr_model, lm=a.lm, dnsmos=not a.no_dnsmos,
                         examples=a.examples)
        report = evaluate(items, cfg, out_dir=a.out)
    except (FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 2
    write_report(report, items, a.out, examples=a.examples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
