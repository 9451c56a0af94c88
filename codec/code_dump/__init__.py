"""The corpus code dump: a tokenized corpus (codec codes + text) for language models.

Full specification: docs/code_dump.md. The package, one concept a file:

    format.py   the on-disk layout: constants, file names, header (make_header), DumpError
    plan.py     plan_shards: which utterances go into which shard (deterministic)
    writer.py   ShardWriter, DumpWriter: shards written atomically, possibly by several processes
    reader.py   CodeDump: read a dump with numpy alone, (codes int16 [n_q, T], meta) per utterance
    hf.py       export_hf: the dump as a Hugging Face dataset
    cli.py      `python -m codec.code_dump info|finalize|export-hf`

Names are imported on first use (PEP 562), so `from codec.code_dump import CodeDump` loads numpy and
json only.
"""
from __future__ import annotations

from core.lazy import lazy_face

_EXPORTS = {
    "FORMAT_NAME": "format", "FORMAT_VERSION": "format", "DTYPE": "format", "MAX_CODEBOOK_SIZE": "format",
    "HEADER_FILE": "format", "INDEX_FILE": "format", "PLAN_FILE": "format", "DumpError": "format",
    "make_header": "format", "shard_name": "format", "shard_index_name": "format",
    "plan_shards": "plan",
    "ShardWriter": "writer", "DumpWriter": "writer",
    "CodeDump": "reader",
    "export_hf": "hf",
    "main": "cli",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS)
