"""The package's structure, read from its imports with `ast`: no import circle, no private name imported across
modules, no function-local import of the package's own modules, and the data/ subpackage independent of the
compression method."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lite_whisper"
PAYLOAD = ROOT / "modeling"


def _modules() -> dict[str, Path]:
    found = {}
    for base, prefix in ((PACKAGE, "lite_whisper"), (PAYLOAD, "lite_whisper.modeling")):
        for path in base.rglob("*.py"):
            if base == PACKAGE and "modeling" in path.relative_to(base).parts[:1]:
                continue  # a symlink to modeling/ in some checkouts
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([prefix, *parts])] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str):
    """(imported module, imported names, line, inside a function) for each import of a lite_whisper module."""
    tree = ast.parse(MODULES[name].read_text())
    here = name if _is_package(name) else name.rsplit(".", 1)[0]
    functions = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        local = id(node) in functions
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lite_whisper"):
                    yield alias.name, [], node.lineno, local
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("lite_whisper"):
                continue
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            if submodules:  # `from . import atomic`: the submodules themselves
                for sub in submodules:
                    yield sub, [], node.lineno, local
                names = [n for n in names if f"{target}.{n}" not in MODULES]
                if not names:
                    continue
            yield target, names, node.lineno, local


def _graph() -> dict[str, set[str]]:
    return {name: {target for target, *_ in _imports(name) if target in MODULES and target != name}
            for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_is_read():
    graph = _graph()
    assert "lite_whisper.compression.statistics" in graph["lite_whisper.compression.pipelines.base"]
    assert "lite_whisper.atomic" in graph["lite_whisper.compression.lite_model"]  # `from lite_whisper import atomic, modeling`


def test_no_import_circle():
    assert _cycles(_graph()) == []
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]  # the check itself finds one


def test_no_private_name_imported_across_modules():
    private = [f"{name}:{line} imports {target}.{n}" for name in MODULES for target, names, line, _ in _imports(name)
               for n in names if n.startswith("_") and target != name]
    assert private == []


def test_own_modules_imported_at_module_top():
    local = [f"{name}:{line} imports {target}" for name in MODULES for target, _, line, inside in _imports(name)
             if inside and name.startswith("lite_whisper.") and not name.startswith("lite_whisper.modeling")]
    assert local == []


def test_nothing_imports_the_cli_and_data_does_not_import_the_method():
    graph = _graph()
    assert [name for name, targets in graph.items() if "lite_whisper.cli" in targets] == []
    allowed = ("lite_whisper.data", "lite_whisper.atomic", "lite_whisper.wer", "lite_whisper.interop.ctranslate2",
               "lite_whisper.processor_files", "lite_whisper.whisper")
    method = {name: sorted(t for t in targets if not t.startswith(allowed))
              for name, targets in graph.items() if name.startswith("lite_whisper.data")}
    assert {name: targets for name, targets in method.items() if targets} == {}
