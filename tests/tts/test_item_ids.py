"""Ids that come from data never name a place outside the output folder (one
rule: tts.limits.check_item_id, the one tts.synthesize --list applies), and an evaluation of nothing is an
error, checked before any work."""
import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.audio import save_audio


def _wav(path: Path, seconds: float = 1.0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 16000)) / 16000
    save_audio(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    return str(path)


@pytest.mark.parametrize("bad", ["../../pwn_rel", "/tmp/pwn_abs", "a/b", "..", ".hidden", "", 123])
def test_evaluate_list_refuses_ids_that_leave_the_output_folder(tmp_path, bad):
    from tts.evaluation.inputs import load_items
    wav = _wav(tmp_path / "p.wav")
    lst = tmp_path / "list.jsonl"
    lst.write_text(json.dumps({"id": bad, "text": "Hello there.", "out_wav": wav, "ref_wav": wav}) + "\n")
    with pytest.raises(ValueError, match=r"list.jsonl:1: |needs 'id'"):
        load_items(lst)


def test_evaluate_main_refuses_a_traversing_id_before_any_work(tmp_path, caplog):
    from tts.evaluate import main
    wav = _wav(tmp_path / "p.wav")
    lst = tmp_path / "list.jsonl"
    lst.write_text(json.dumps({"id": "../../pwn_rel", "text": "Hello there.", "out_wav": wav}) + "\n")
    out = tmp_path / "rep" / "a"
    assert main(["--list", str(lst), "--out", str(out), "--no-dnsmos"]) == 2
    assert "cannot be a file name" in caplog.text
    assert not (tmp_path / "pwn_rel").exists() and not out.exists()


def test_evaluate_of_nothing_is_an_error(tmp_path):
    from tts.evaluation.inputs import load_items
    folder = tmp_path / "outs"
    folder.mkdir()
    (folder / "a.wav").write_text("not audio")
    (folder / "a.txt").write_text("Hello there.")
    with pytest.raises(ValueError, match="nothing to evaluate"):
        load_items(None, folder)                                    # a folder of non-audio files
    lst = tmp_path / "list.jsonl"
    lst.write_text(json.dumps({"id": "a", "text": "Hi.", "out_wav": str(tmp_path / "gone.wav")}) + "\n")
    with pytest.raises(ValueError, match="none of its 1 items has readable audio.*gone.wav: no such file"):
        load_items(lst)                                             # a list whose wavs do not exist
    lst.write_text(json.dumps({"id": "a", "text": 123, "out_wav": "x.wav"}) + "\n")
    with pytest.raises(ValueError, match="non-empty string"):
        load_items(lst)                                             # a wrong type says so


def test_synthesize_list_and_evaluate_share_one_id_rule():
    import tts.evaluation.inputs as inputs
    import tts.synthesize as synth
    from tts.limits import check_item_id
    assert synth.check_item_id is check_item_id and inputs.check_item_id is check_item_id


def _manifest(tmp_path: Path, ids: list[str]) -> list[dict]:
    rows = []
    for i, rid in enumerate(ids):
        rows.append({"id": rid, "speaker": "s1", "chapter": "c1", "duration": 4.0, "sr": 16000,
                     "text_norm": f"Sentence {i}.", "text_orig": f"Sentence {i}.",
                     "path": _wav(tmp_path / "corpus" / f"u{i}.wav", 4.0)})
    return rows


def test_zeroshot_list_refuses_manifest_ids_that_name_a_place(tmp_path):
    from tts.zeroshot_list import build_list
    target = tmp_path / "elsewhere" / "pwn"
    rows = _manifest(tmp_path, ["s1_0", str(target)])
    with pytest.raises(ValueError, match="manifest row 2: id .* cannot be a file name"):
        build_list(rows, tmp_path / "synth")
    assert not Path(str(target) + ".prompt.wav").exists() and not (tmp_path / "synth").exists()


def test_zeroshot_list_with_nothing_qualifying_is_one_line_not_a_traceback(tmp_path, caplog):
    from core.io import write_jsonl
    from tts.zeroshot_list import main
    man = tmp_path / "m.jsonl"
    write_jsonl(man, _manifest(tmp_path, ["s1_0", "s1_1"]))
    assert main(["--manifest", str(man), "--out", str(tmp_path / "synth"), "--min-duration", "30"]) == 2
    assert "no test utterance qualifies" in caplog.text and "Traceback" not in caplog.text
