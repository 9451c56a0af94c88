"""The items tts.evaluate scores: from a stage-7 list, a synthesizer's results.jsonl or a folder of outputs
(the rules are in tts/evaluate.py's docstring), and the audio each names."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from core.hub import CONFIG_FILE
from core.io import path_from_file, read_jsonl
from data_prep.audio import AudioError, audio_info, load_audio
from tts.synthesizer import check_item_id      # tts.limits' one id rule (evaluation sits above synthesis)

log = logging.getLogger(__name__)

__all__ = ["EvalItem", "load_items", "tts_n_q", "load_wav"]


@dataclass
class EvalItem:
    id: str
    text: str
    speaker: Optional[str] = None
    ref_wav: Optional[str] = None
    prompt_wav: Optional[str] = None
    prompt_text: Optional[str] = None
    out_wav: Optional[str] = None


def load_items(list_path: Optional[str | Path] = None, outputs: Optional[str | Path] = None) -> list[EvalItem]:
    """Items from a stage-7 list and/or a folder of outputs (see module docstring). Checked before any
    work: each id is a plain file name (tts.limits.check_item_id: it names examples/<id>/ and
    <row>/<id>.wav under --out), and at least one item has readable audio (else ValueError saying why)."""
    out_dir = Path(outputs) if outputs else None
    if out_dir is not None and not out_dir.is_dir():
        raise FileNotFoundError(f"outputs folder {out_dir} does not exist")
    if list_path is None and out_dir is not None:
        for cand in (out_dir / "list.jsonl", out_dir.parent / "list.jsonl"):
            if cand.is_file():
                list_path = cand
                break
    if list_path is None and out_dir is not None and (out_dir / "results.jsonl").is_file():
        items = _items_from_results(out_dir)
    elif list_path is not None:
        items = _items_from_list(Path(list_path), out_dir)
    elif out_dir is None:
        raise ValueError("give --list, a folder of outputs, or both")
    else:
        items = _items_from_folder(out_dir)
    if not items:
        raise ValueError(f"nothing to evaluate (list {list_path}, folder {out_dir}): no items")
    _check_some_audio(items, list_path or out_dir)
    return items


def _items_from_list(list_path: Path, out_dir: Optional[Path]) -> list[EvalItem]:
    if not list_path.is_file():
        raise FileNotFoundError(f"--list {list_path}: no such file")
    items = []
    here = list_path.parent       # relative paths: from the list's folder upwards
    for n, r in enumerate(read_jsonl(list_path), 1):
        if not isinstance(r, dict) or not r.get("id") or not isinstance(r.get("text"), str) or not r["text"].strip():
            raise ValueError(f"{list_path}:{n}: a list row needs 'id' and 'text' (a non-empty string)")
        rid = check_item_id(r["id"], f"{list_path}:{n}")
        ref, prm, outw = (path_from_file(r[k], here) if r.get(k) else None for k in ("ref_wav", "prompt_wav", "out_wav"))
        it = EvalItem(id=rid, text=r["text"], speaker=r.get("speaker"),
                      ref_wav=ref, prompt_wav=prm, prompt_text=r.get("prompt_text"), out_wav=outw)
        if out_dir is not None:
            it.out_wav = str(out_dir / f"{it.id}.wav")
        items.append(it)
    return items


def _items_from_folder(out_dir: Path) -> list[EvalItem]:
    """Each <id>.wav with its <id>.txt / .lab (text) and, if present, <id>.ref.wav / <id>.prompt.wav; a file
    that is not audio, or whose name is not a plain id, is left out with a warning."""
    items = []
    for wav in sorted(out_dir.glob("*.wav")):
        if wav.name.endswith((".ref.wav", ".prompt.wav")):
            continue
        stem = wav.name[: -len(".wav")]
        txt = next((p for p in (out_dir / f"{stem}.txt", out_dir / f"{stem}.lab") if p.is_file()), None)
        why = None if txt is not None else f"no {stem}.txt or .lab beside it"
        try:
            check_item_id(stem, str(wav))
            audio_info(wav)
        except (ValueError, AudioError) as e:
            why = why or str(e)
        if why:
            log.warning("%s: %s; left out", wav, why)
            continue
        ref, prm = out_dir / f"{stem}.ref.wav", out_dir / f"{stem}.prompt.wav"
        items.append(EvalItem(id=stem, text=txt.read_text(encoding="utf-8").strip(), out_wav=str(wav),
                              ref_wav=str(ref) if ref.is_file() else None,
                              prompt_wav=str(prm) if prm.is_file() else None))
    return items


def _check_some_audio(items: list[EvalItem], source) -> None:
    """ValueError unless at least one item's output or recording is a readable audio file: an evaluation
    of nothing is an error, not an empty report."""
    first = None
    for it in items:
        for p in (it.out_wav, it.ref_wav):
            if not p:
                continue
            try:
                audio_info(p)
                return
            except AudioError as e:
                first = first or (e.reason if Path(p).is_file() else "no such file", p)
    what = f"{first[1]}: {first[0]}" if first else "no item names an out_wav or ref_wav"
    raise ValueError(f"nothing to evaluate from {source}: none of its {len(items)} items has readable audio "
                     f"(first: {what})")


def _items_from_results(out_dir: Path) -> list[EvalItem]:
    """A `tts.synthesize --list ... --out-dir FOLDER` folder: its own results.jsonl (id, text, wav,
    prompt_wav, prompt_text); an item that failed to synthesize counts as missing audio."""
    items = []
    for n, r in enumerate(read_jsonl(out_dir / "results.jsonl"), 1):
        if not r.get("id") or not r.get("text"):
            log.warning("%s:%d: no id or text (a failed item of an older synthesizer); left out",
                        out_dir / "results.jsonl", n)
            continue
        rid = check_item_id(r["id"], f"{out_dir / 'results.jsonl'}:{n}")
        wav = out_dir / Path(str(r.get("wav") or f"{rid}.wav")).name     # relative to the folder
        prm, ref = (path_from_file(r[k], out_dir) if r.get(k) else None for k in ("prompt_wav", "ref_wav"))
        items.append(EvalItem(id=rid, text=str(r["text"]), speaker=r.get("speaker"),
                              prompt_wav=prm, prompt_text=r.get("prompt_text"),
                              ref_wav=ref, out_wav=None if "error" in r else str(wav)))
    return items


def tts_n_q(model_dir: Optional[str | Path]) -> Optional[int]:
    """n_q of an exported TTS model directory (its config's model.n_q), or None (no directory given, or
    no config.json in it)."""
    if not model_dir or not (Path(model_dir) / CONFIG_FILE).is_file():
        return None
    from tts.checkpoint import read_record
    return read_record(model_dir)[0].model.n_q


def load_wav(path: Optional[str]) -> Optional[tuple[np.ndarray, int]]:
    """(audio, sample rate) of `path`, or None when it is not given, absent or unreadable (logged)."""
    if not path or not Path(path).is_file():
        return None
    try:
        return load_audio(path)
    except AudioError as e:
        log.warning("%s", e)
        return None
