"""A code dump as a Hugging Face dataset (`save_to_disk`), for training outside this repository."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Optional

from .format import RESERVED_KEYS, DumpError, PathLike, _dumps
from .reader import CodeDump

logger = logging.getLogger(__name__)


def export_hf(dump_dir: PathLike, out_dir: PathLike, n_q: Optional[int] = None) -> Path:
    """Write the dump as a Hugging Face dataset with `save_to_disk` (load with `load_from_disk`).

    Columns: id, speaker, text, phonemes (strings, may be None), frames (int32), codes (int16
    nested lists [n_q][T]: `List(List(Value("int16")))`; Array2D cannot have a variable last
    dimension), meta (JSON string of the remaining index fields, e.g. duration, scale).
    """
    try:
        import datasets
    except ImportError:
        raise ImportError("export_hf needs the `datasets` package: pip install 'datasets>=2.14' "
                          "(or pip install 'ndvq[datasets]')") from None
    dump = CodeDump(dump_dir)
    if len(dump) == 0:
        raise DumpError(f"{dump.dir}: the dump holds no utterance: nothing to export (see its skipped.jsonl)")
    n_q = dump.n_q if n_q is None else int(n_q)
    if not 1 <= n_q <= dump.n_q:
        raise DumpError(f"--n-q {n_q} is outside 1..{dump.n_q} of {dump.dir}")
    seq = getattr(datasets, "List", None) or datasets.Sequence
    features = datasets.Features({
        "id": datasets.Value("string"), "speaker": datasets.Value("string"),
        "text": datasets.Value("string"), "phonemes": datasets.Value("string"),
        "frames": datasets.Value("int32"),
        "codes": seq(seq(datasets.Value("int16"))),
        "meta": datasets.Value("string"),
    })
    skip = set(RESERVED_KEYS) | {"speaker", "text", "phonemes"}

    def gen(dump_dir: str, n_q: int):
        d = CodeDump(dump_dir)
        for i in range(len(d)):
            m = d.meta(i)
            yield {"id": m["id"], "speaker": _opt_str(m.get("speaker")),
                   "text": _opt_str(m.get("text")), "phonemes": _opt_str(m.get("phonemes")),
                   "frames": int(m["frames"]), "codes": d.codes(i, n_q),
                   "meta": _dumps({k: v for k, v in m.items() if k not in skip})}

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # a private cache: from_generator's cache is keyed on the function, not the dump's contents
    with tempfile.TemporaryDirectory(prefix=".hf-cache-", dir=out_dir.parent) as cache:
        ds = datasets.Dataset.from_generator(gen, features=features, cache_dir=cache,
                                             gen_kwargs={"dump_dir": str(dump.dir), "n_q": n_q})
        info_header = dict(dump.header)
        info_header["codec"] = dict(info_header["codec"], n_q=n_q)
        ds.info.description = _dumps({"ndvq_code_dump_header": info_header})
        ds.save_to_disk(str(out_dir))
    logger.info("exported %d utterances of %s to %s", len(dump), dump.dir, out_dir)
    return out_dir


def _opt_str(v: Any) -> Optional[str]:
    return None if v is None else str(v)
