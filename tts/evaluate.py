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

Scores: WER (``tts.asr``: pocketsphinx with an LM built from the evaluated sentences unless
``--lm general`` or ``--asr-model DIR``), speaker similarity to the prompt (``tts.speaker``; on the
ground-truth row this is two different utterances of the same speaker, the *ceiling*; a
different-speaker *floor* pairs each prompt with other speakers' recordings), DNSMOS where
speechmos is installed, and the codec metrics of ``codec.metrics`` (PESQ, STOI, SI-SDR, mel) for the
resynthesis row against the recording. With ``--aligner DIR`` (the recipe's exp/aligner/model, a CTC
phoneme recognizer trained by ``tts.align`` on the training speakers only) every row also gets a
phoneme error rate (PER) against the pronounced phones of the item's text from the models' own text
front end (the NAR's config.json "frontend"). Per item: the WER's substitutions, deletions and
insertions, each row's duration, and the duration ratio TTS / ground truth. Targets: TTS WER
<= 1.5x resynthesis WER, TTS PER <= 1.5x resynthesis PER, TTS SIM >= different-speaker floor + 0.1,
median duration ratio in 0.8-1.25. Writes ``report.json``, ``report.md``, ``scores.png``, ``spectrograms.png`` and example
wavs (``examples/``) to ``--out`` (``tts.report``).

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
from core.io import path_from_file, read_jsonl
from core.logs import setup_logging

log = logging.getLogger(__name__)

Row = Literal["ground_truth", "resynthesis", "gt_cb1_nar", "tts"]
ROWS: tuple[Row, ...] = ("ground_truth", "resynthesis", "gt_cb1_nar", "tts")
LMMode = Literal["test_texts", "general"]
WER_TARGET_RATIO = 1.5      # TTS WER <= 1.5x resynthesis WER
PER_TARGET_RATIO = 1.5      # TTS PER <= 1.5x resynthesis PER
SIM_TARGET_MARGIN = 0.1     # TTS SIM >= different-speaker floor + 0.1
DURATION_TARGET = (0.8, 1.25)   # median duration ratio TTS / ground truth
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
    nar: Optional[str] = None           # exported NAR dir: the "ground-truth codebook 1 + NAR" row (with codec)
    aligner: Optional[str] = None       # tts.align recognizer dir: PER on every row (None: no PER)


@dataclass
class RowScores:
    name: str
    n: int                               # items with audio for this row
    missing: int                         # items without audio (counted as all-deletion for WER)
    wer: Optional[float] = None
    wer_detail: dict = field(default_factory=dict)
    per: Optional[float] = None          # corpus phoneme error rate (with --aligner)
    per_detail: dict = field(default_factory=dict)     # substitutions/deletions/insertions/ref_phones
    seconds: Optional[float] = None      # mean duration of the row's audio
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
    durations: dict = field(default_factory=dict)      # duration ratio TTS / ground truth: median, min, max

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


def word_errors(ref: str, hyp: str) -> dict:
    """Substitutions, deletions, insertions and reference words of one item (normalised as for WER;
    an empty hypothesis is all deletions)."""
    import jiwer
    from .asr import normalize_for_wer
    r, h = normalize_for_wer(ref), normalize_for_wer(hyp)
    o = jiwer.process_words(r, h)
    return {"substitutions": int(o.substitutions), "deletions": int(o.deletions),
            "insertions": int(o.insertions), "ref_words": len(r.split())}


def phone_scores(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> tuple[float, list[float], dict]:
    """(corpus PER, per-item PER, substitutions/deletions/insertions/ref_phones) of phone lists: the PER is
    ``tts.align.recognizer.phoneme_error_rate`` (total edits / total reference phones), the split of the
    edits is jiwer's alignment of the same lists. A missing or empty hypothesis is all deletions."""
    import jiwer
    from tts.align.recognizer import edit_distance, phoneme_error_rate
    if len(refs) != len(hyps):
        raise ValueError(f"phone_scores: {len(refs)} references but {len(hyps)} hypotheses")
    per_item = [edit_distance(r, h) / len(r) if len(r) else float("nan") for r, h in zip(refs, hyps)]
    keep = [i for i, r in enumerate(refs) if len(r)]
    detail = {"substitutions": 0, "deletions": 0, "insertions": 0, "ref_phones": sum(len(r) for r in refs)}
    if keep:
        o = jiwer.process_words([" ".join(refs[i]) for i in keep], [" ".join(hyps[i]) for i in keep])
        detail.update(substitutions=int(o.substitutions), deletions=int(o.deletions), insertions=int(o.insertions))
    return float(phoneme_error_rate([list(r) for r in refs], [list(h) for h in hyps])), per_item, detail


SPEECH_FLOOR_DB = -40.0     # the speech span: 20 ms frames within this of the loudest frame


def speech_seconds(wav: np.ndarray, sr: int) -> float:
    """Seconds from the first to the last 20 ms frame within SPEECH_FLOOR_DB of the loudest one: the
    length without leading and trailing pauses (a TTS output continues its prompt, so it has no
    leading pause while a recording has one)."""
    hop = max(1, int(0.02 * sr))
    n = len(wav) // hop
    if n == 0:
        return len(wav) / sr
    rms = np.sqrt(np.mean(np.asarray(wav[: n * hop], dtype=np.float64).reshape(n, hop) ** 2, axis=1)) + 1e-12
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > SPEECH_FLOOR_DB)
    return (loud[-1] - loud[0] + 1) * hop / sr


def duration_summary(per_item: Sequence[dict]) -> dict:
    """Duration ratio TTS / ground truth of every item with both audios, on the speech spans
    (``speech_seconds``; whole files where a row lacks them): sets ``item["duration_ratio"]`` and
    returns {n, median, min, max, median_untrimmed} ({} when no item has both)."""
    ratios, raw = [], []
    for rec in per_item:
        t, g = rec.get("tts") or {}, rec.get("ground_truth") or {}
        if t.get("seconds") is not None and g.get("seconds"):
            a, b = t.get("speech_seconds", t["seconds"]), g.get("speech_seconds", g["seconds"])
            rec["duration_ratio"] = a / b if b else float("nan")
            ratios.append(rec["duration_ratio"])
            raw.append(t["seconds"] / g["seconds"])
    if not ratios:
        return {}
    return {"n": len(ratios), "median": float(np.median(ratios)), "min": float(np.min(ratios)),
            "max": float(np.max(ratios)), "median_untrimmed": float(np.median(raw))}


@dataclass
class _NARRow:
    """What the "ground-truth codebook 1 + NAR" row needs: the NAR, the codec, the text front end."""
    model: object
    codec: object
    frontend: object

    def audio(self, it: EvalItem, ref: tuple[np.ndarray, int], i: int) -> tuple[Optional[tuple[np.ndarray, int]], str]:
        """(audio, "") or (None, why). The recording's codebook 1 (its own codes), codebooks 2..n_q by the
        NAR given the whole prompt's codes and the phonemes `tts.synthesize` gives the NAR (prompt text +
        target for a `prefix`-mode NAR, the target alone for `other_utterance`), decoded at the
        recording's scale."""
        import torch
        from tts.models.decoding import nar_generate
        prm = _load(it.prompt_wav)
        if prm is None or not it.prompt_text:
            return None, "no prompt audio or prompt text"
        nar, codec, fe = self.model, self.codec, self.frontend
        K = nar.cfg.n_q
        r = codec.encode(ref[0], ref[1], n_q=K)
        first = r.item_codes(0)[0]
        prompt = codec.encode(prm[0], prm[1], n_q=K).item_codes(0)
        ids = fe.text_to_ids(it.text)
        if nar.cfg.prompt_mode == "prefix":
            ids = fe.text_to_ids(it.prompt_text) + [fe.symbols.word_sep_id] + ids
        if len(ids) > nar.cfg.max_text_tokens or prompt.shape[1] + first.numel() > nar.cfg.max_frames:
            return None, (f"{len(ids)} phonemes / {prompt.shape[1]} + {first.numel()} frames exceed the NAR's "
                          f"max_text_tokens {nar.cfg.max_text_tokens} / max_frames {nar.cfg.max_frames}")
        codes = nar_generate(nar, [torch.tensor(ids, dtype=torch.long)], [prompt], [first])[0]
        wav = codec.decode(codes[None], scales=r.scales, num_samples=r.num_samples)[0, 0].numpy()
        return (wav, codec.sample_rate), ""


def _load_nar_row(cfg: EvalConfig, codec, frontend) -> Optional[_NARRow]:
    if not cfg.nar:
        return None
    if codec is None:
        log.warning("--nar without --codec: the 'ground-truth codebook 1 + NAR' row needs the codec; left out")
        return None
    if not (Path(cfg.nar) / "config.json").is_file():
        log.warning("--nar %s: no config.json (not an exported NAR); the 'ground-truth codebook 1 + NAR' row "
                    "is left out", cfg.nar)
        return None
    from tts.checkpoint import check_codec, check_frontend, load_tts_model
    lt = load_tts_model(cfg.nar)
    if lt.part != "nar":
        raise ValueError(f"--nar {cfg.nar}: is a {lt.part.upper()} model, expected the NAR")
    check_codec(lt.meta, codec.checkpoint_sha256, f"NAR model {cfg.nar}")
    check_frontend(lt.meta, frontend, f"NAR model {cfg.nar}")
    if lt.model.cfg.n_q > codec.n_q:
        raise ValueError(f"--nar {cfg.nar} models {lt.model.cfg.n_q} codebooks; the codec has {codec.n_q}")
    return _NARRow(lt.model, codec, frontend)


def _model_frontend(cfg: EvalConfig, aligner_record: Optional[dict]):
    """(TextFrontend, where its settings come from): the NAR's config.json "frontend" (the models' own front
    end, as tts.synthesize loads it), else the aligner's record, else the default settings."""
    from data_prep.frontend import TextFrontend
    meta, source = None, "the default TextFrontend settings (no --nar config.json)"
    if cfg.nar and (Path(cfg.nar) / "config.json").is_file():
        rec = json.loads((Path(cfg.nar) / "config.json").read_text(encoding="utf-8"))
        if rec.get("frontend"):
            meta, source = rec, f"the NAR's config.json ({cfg.nar})"
    if meta is None and aligner_record and aligner_record.get("frontend"):
        meta, source = aligner_record, f"the aligner's config.json ({cfg.aligner})"
    return TextFrontend.from_record((meta or {}).get("frontend") or {}, source), source


def evaluate(items: list[EvalItem], cfg: EvalConfig = EvalConfig(), out_dir: Optional[str | Path] = None
             ) -> EvalReport:
    """Score every row on ``items``; resynthesised and NAR-row audio is written to ``out_dir/<row>/``."""
    from core.progress import progress

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

    recognizer = None
    if cfg.aligner:
        from tts.align.recognizer import PhonemeRecognizer
        try:
            recognizer = PhonemeRecognizer.from_pretrained(cfg.aligner)
        except RuntimeError as e:          # weights that do not fit their config.json (an older format)
            raise ValueError(f"--aligner {cfg.aligner}: cannot load the recognizer: "
                             f"{str(e).splitlines()[0]} {' '.join(str(e).splitlines()[1:2]).strip()}") from e
    frontend = fe_source = None
    if recognizer is not None or (cfg.nar and codec is not None):
        frontend, fe_source = _model_frontend(cfg, recognizer.record if recognizer is not None else None)
    nar_row = _load_nar_row(cfg, codec, frontend)

    per_item: list[dict] = [{"id": it.id, "speaker": it.speaker, "text": it.text} for it in items]
    ref_phones: Optional[list[list[str]]] = None
    if recognizer is not None:
        from tts.align.recognizer import pronounced
        ref_phones = [pronounced(seq) for seq in frontend.phonemize(texts)]
        for rec, ph in zip(per_item, ref_phones):
            rec["ref_phones"] = " ".join(ph)
    prompt_emb: list[Optional[np.ndarray]] = []
    for it in progress(items, desc="prompts", unit="utt", leave=False):
        a = _load(it.prompt_wav)
        prompt_emb.append(spk.embed(*a) if a is not None else None)

    rows: dict[str, RowScores] = {}
    gt_emb: list[Optional[np.ndarray]] = []
    for row in ROWS:
        if row == "resynthesis" and codec is None or row == "gt_cb1_nar" and nar_row is None:
            continue
        hyps, phones, sims, dns, cms, secs = [], [], [], [], [], []
        have = 0
        for i, it in enumerate(progress(items, desc=row, unit="utt", leave=False)):
            rec = per_item[i].setdefault(row, {})
            ref = None
            if row == "ground_truth":
                a = _load(it.ref_wav)
            elif row == "tts":
                a = _load(it.out_wav)
            else:
                ref = _load(it.ref_wav)
                a = None
                if ref is not None and row == "resynthesis":
                    res = codec.encode(ref[0], ref[1], n_q=n_q)
                    a = (codec.decode(res)[0, 0].numpy(), codec.sample_rate)
                elif ref is not None:
                    a, why = nar_row.audio(it, ref, i)
                    if a is None:
                        log.warning("%s: %s row left out for this item: %s", it.id, row, why)
                if a is not None and out is not None:
                    path = out / row / f"{it.id}.wav"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    save_audio(path, a[0], a[1])
                    rec["wav"] = str(path)
            if row == "ground_truth":
                gt_emb.append(None)
            if a is None:
                hyps.append("")
                phones.append([])
                rec["missing"] = True
                continue
            have += 1
            wav, sr = a
            rec["seconds"] = len(wav) / sr
            rec["speech_seconds"] = speech_seconds(wav, sr)
            secs.append(rec["seconds"])
            hyp = asr.transcribe(wav, sr)
            hyps.append(hyp)
            rec["hyp"] = hyp
            if recognizer is not None:
                phones.append(recognizer.transcribe(wav, sr))
                rec["phones"] = " ".join(phones[-1])
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
            per_item[i][row]["wer_errors"] = word_errors(texts[i], hyps[i])
        per = per_detail = None
        if ref_phones is not None:
            per, per_items, per_detail = phone_scores(ref_phones, phones)
            for i, v in enumerate(per_items):
                per_item[i][row]["per"] = v
        rows[row] = RowScores(
            name=row, n=have, missing=len(items) - have, wer=w.wer,
            wer_detail={"substitutions": w.substitutions, "deletions": w.deletions,
                        "insertions": w.insertions, "ref_words": w.ref_words},
            per=per, per_detail=per_detail or {}, seconds=_mean(secs),
            sim=_mean(sims), sim_std=float(np.std(sims)) if sims else None,
            dnsmos={k: _mean([d[k] for d in dns]) for k in dns[0]} if dns else {},
            codec_metrics={k: _mean([c[k] for c in cms]) for k in cms[0]} if cms else {})
        log.info("%s: WER %.3f (S %d, D %d, I %d), PER %s, SIM %s (%d items, %d missing)", row, w.wer,
                 w.substitutions, w.deletions, w.insertions, "n/a" if per is None else f"{per:.3f}",
                 "n/a" if rows[row].sim is None else f"{rows[row].sim:.3f}", have, len(items) - have)

    floor = _sim_floor(items, prompt_emb, gt_emb)
    durations = duration_summary(per_item)
    setting = {"asr": asr.name, "asr_constrained": bool(getattr(asr, "constrained", False)),
               "asr_oov": list(getattr(asr, "oov", [])), "speaker_encoder": spk.name,
               "n_items": len(items), "n_speakers": len({it.speaker for it in items}),
               "codec": cfg.codec, "n_q": n_q, "dnsmos": use_dnsmos,
               "metric_versions": metrics_mod.package_versions() if metrics_mod else {}}
    if nar_row is not None:
        setting.update(nar=cfg.nar, nar_n_q=int(nar_row.model.cfg.n_q), nar_prompt_mode=nar_row.model.cfg.prompt_mode)
    if recognizer is not None:
        training = recognizer.record.get("training") or {}
        setting.update(aligner=cfg.aligner, aligner_dev_per=(training.get("final_valid") or {}).get("per"),
                       aligner_steps=training.get("steps"), aligner_train_data=training.get("train_manifest")
                       or training.get("train_dump"))
    if frontend is not None:
        setting["frontend"] = fe_source
    report = EvalReport(rows=rows, sim_floor=floor, targets=_targets(rows, floor, durations), items=per_item,
                        seconds=round(time.time() - t0, 1), setting=setting, durations=durations)
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


def _targets(rows: dict[str, RowScores], floor: Optional[float] = None, durations: Optional[dict] = None) -> dict:
    """Issue 17's targets, each {rule, tts, base, limit, ratio?, met}; a target whose inputs are missing is
    left out."""
    t: dict = {}
    tts, rs = rows.get("tts"), rows.get("resynthesis")
    for key, ratio in (("wer", WER_TARGET_RATIO), ("per", PER_TARGET_RATIO)):
        a, b = (getattr(tts, key), getattr(rs, key)) if tts and rs else (None, None)
        if a is not None and b is not None:
            limit = ratio * b
            t[key] = {"rule": f"TTS {key.upper()} <= {ratio:g} x resynthesis {key.upper()}", "tts": a,
                      "base": b, "resynthesis": b, "limit": limit, "ratio": a / b if b else None,
                      "met": bool(a <= limit)}
    if tts and tts.sim is not None and floor is not None:
        limit = floor + SIM_TARGET_MARGIN
        t["sim"] = {"rule": f"TTS SIM >= different-speaker floor + {SIM_TARGET_MARGIN:g}", "tts": tts.sim,
                    "base": floor, "floor": floor, "limit": limit, "met": bool(tts.sim >= limit)}
    if durations:
        lo, hi = DURATION_TARGET
        med = durations["median"]
        t["duration"] = {"rule": f"median duration ratio TTS / ground truth in {lo:g}-{hi:g}", "tts": med,
                         "limit": [lo, hi], "min": durations["min"], "max": durations["max"],
                         "met": bool(lo <= med <= hi)}
    return t


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
    from .report import write_report
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
