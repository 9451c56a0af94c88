"""The house rules, checked on the source (README "How the code is laid out"):

- layers: core <- data_prep <- codec <- tts <- experiments; the library (core, data_prep, codec, tts) never
  imports experiments, benchmarks or tests, and no import runs back up a layer;
- inside a package, the network modules (codec/models, codec/quantization, tts/models), the losses, the
  inference internals, the code dump format and the aligner (tts/align) import only what is below them,
  never build, train, api, checkpoint, evaluate, synthesize;
- no import circles between modules;
- no file over MAX_FILE_LINES lines and no function over MAX_FUNCTION_LINES lines unless a comment
  `# long: <why>` sits on the `def` line or the line above it (a file: anywhere in its first 30 lines).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY = ("core", "data_prep", "codec", "tts")
CHECKED = LIBRARY + ("experiments", "benchmarks")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80

# what each top-level package may import (besides itself)
ALLOWED = {
    "core": set(),
    "data_prep": {"core"},
    "codec": {"core", "data_prep"},
    "tts": {"core", "data_prep", "codec"},
    "experiments": {"core", "data_prep", "codec", "tts"},
    "benchmarks": {"core", "data_prep", "codec", "tts"},
}
# lower layers inside a package: module prefix -> the prefixes it may import from its own package
INNER = {
    "codec.config": ("codec.config",),
    "codec.models": ("codec.config", "codec.models", "codec.quantization"),
    "codec.quantization": ("codec.config", "codec.quantization"),
    "codec.losses": ("codec.config", "codec.models", "codec.losses"),
    "codec.inference": ("codec.config", "codec.models", "codec.quantization", "codec.inference"),
    "codec.code_dump": ("codec.code_dump",),
    "codec.evaluation": ("codec.config", "codec.models", "codec.quantization", "codec.api", "codec.checkpoint",
                         "codec.evaluation"),
    "tts.config": ("tts.config",),
    "tts.models": ("tts.config", "tts.batch", "tts.sampling", "tts.models"),
    "tts.align": ("tts.config", "tts.align"),
    "tts.evaluation": ("tts.config", "tts.checkpoint", "tts.models", "tts.sampling", "tts.synthesizer", "tts.align",
                       "tts.evaluation"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for top in CHECKED:
        for p in sorted((REPO / top).rglob("*.py")):
            parts = p.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Project modules `name` imports (relative imports resolved; `from pkg import mod` counts mod)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:          # `import codec.api` -> codec.api; `a.b.Name` -> a.b
                t = t.rpartition(".")[0]
            if t and t != name and t.split(".")[0] in CHECKED:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_no_import_runs_back_up_a_layer():
    bad = [f"{a} -> {b}" for a, deps in GRAPH.items() for b in deps
           if b.split(".")[0] != a.split(".")[0] and b.split(".")[0] not in ALLOWED[a.split(".")[0]]]
    assert not bad, "imports against the layers core <- data_prep <- codec <- tts <- experiments:\n" + "\n".join(bad)


def test_lower_layers_inside_a_package_do_not_import_higher_ones():
    bad = []
    for a, deps in GRAPH.items():
        rule = next((allowed for prefix, allowed in INNER.items() if a == prefix or a.startswith(prefix + ".")), None)
        if rule is None:
            continue
        own = a.split(".")[0]
        for b in deps:
            if b.split(".")[0] == own and not any(b == p or b.startswith(p + ".") for p in rule):
                bad.append(f"{a} -> {b}")
    assert not bad, "imports that run back up inside a package:\n" + "\n".join(bad)


def _cycles() -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:                      # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    cycles = _cycles()
    assert not cycles, f"import circles: {cycles}"


def _has_reason(lines: list[str], lineno: int) -> bool:
    near = lines[max(0, lineno - 2): lineno]          # the line above the def and the def line
    return any("# long:" in ln for ln in near)


@pytest.mark.parametrize("top", CHECKED)
def test_files_and_functions_stay_small_or_say_why(top):
    bad = []
    for name, path in MODULES.items():
        if name.split(".")[0] != top:
            continue
        text = path.read_text()
        lines = text.splitlines()
        if len(lines) > MAX_FILE_LINES and not any("# long:" in ln for ln in lines[:30]):
            bad.append(f"{path.relative_to(REPO)}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and not _has_reason(lines, first):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}(): {n} lines")
    assert not bad, ("over the size limits without a `# long: <why>` comment:\n" + "\n".join(bad))
