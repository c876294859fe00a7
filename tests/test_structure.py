"""The package's structure, read from its imports with `ast`: no import circle, no private name imported across
modules, no function-local import of the package's own modules, the data/ subpackage independent of the
compression method, the method (compression/) independent of the tools around it, the tools using the method only
through its public names, each type alias declared once; and, run: the public names, a bad flag answered before
torch is imported."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert [name for name, targets in graph.items() if not name.startswith("lite_whisper.cli")
            and any(t.startswith("lite_whisper.cli") for t in targets)] == []
    allowed = ("lite_whisper.data", "lite_whisper.atomic", "lite_whisper.wer", "lite_whisper.processor_files",
               "lite_whisper.whisper")
    method = {name: sorted(t for t in targets if not t.startswith(allowed))
              for name, targets in graph.items() if name.startswith("lite_whisper.data")}
    assert {name: targets for name, targets in method.items() if targets} == {}


METHOD = "lite_whisper.compression"
TOOLING = ("lite_whisper.evaluation", "lite_whisper.publish", "lite_whisper.interop", "lite_whisper.benchmarks",
           "lite_whisper.cli")


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in ((prefixes,) if isinstance(prefixes, str) else prefixes))


def _public_names(module: str) -> set[str]:
    """The keys of a lazy package's `_PUBLIC` table (its `__all__`), read without importing it."""
    tree = ast.parse(MODULES[module].read_text())
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "_PUBLIC")
    return {k.value for k in table.keys}


def test_the_method_imports_no_tool():
    graph = _graph()
    assert "lite_whisper.compression.statistics" in graph["lite_whisper.compression.pipelines.base"]
    tooling = {name: sorted(t for t in targets if _under(t, TOOLING))
               for name, targets in graph.items() if _under(name, METHOD)}
    assert {name: targets for name, targets in tooling.items() if targets} == {}


def _reached(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module that importing `start` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_the_method_reaches_no_tool_even_through_data():
    graph = _graph()
    assert "lite_whisper.data.pool" in _reached(graph, "lite_whisper.compression.validation")  # through data/assets
    assert _reached({"a": {"b"}, "b": {"c"}, "c": set()}, "a") == {"b", "c"}  # the walk itself follows chains
    reached = {name: sorted(t for t in _reached(graph, name) if _under(t, TOOLING))
               for name in graph if _under(name, METHOD)}
    assert {name: tools for name, tools in reached.items() if tools} == {}


def test_tools_use_the_method_only_through_its_public_names():
    public = _public_names(METHOD)
    assert {"convert", "ConversionOptions", "RecoveryOptions", "set_fast_path"} <= public
    wrong = []
    for name in MODULES:
        if not _under(name, TOOLING):
            continue
        for target, names, line, _ in _imports(name):
            if _under(target, METHOD) and target != METHOD:
                wrong.append(f"{name}:{line} imports the method's module {target}")
            elif target == METHOD:
                wrong += [f"{name}:{line} imports {METHOD}.{n}, not a public name" for n in names if n not in public]
    assert wrong == []


def _type_aliases(name: str) -> list[str]:
    """Module-level type aliases: `X = tuple[...]`, `X = int | None`, `X = Mapping[...]`, `type X = ...`."""
    found = []
    for node in ast.parse(MODULES[name].read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value, target = node.value, node.targets[0].id
            alias = isinstance(value, ast.Subscript) or (
                isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr)
                and all(isinstance(v, (ast.Name, ast.Constant, ast.Subscript)) for v in (value.left, value.right)))
            if alias and target[:1].isupper() and not target.isupper():
                found.append(target)
        elif type(node).__name__ == "TypeAlias":
            found.append(node.name.id)
    return found


def test_each_type_alias_is_declared_once():
    declared: dict[str, list[str]] = {}
    for name in MODULES:
        for alias in _type_aliases(name):
            declared.setdefault(alias, []).append(name)
    assert {alias: where for alias, where in declared.items() if len(where) > 1} == {}
    types = f"{METHOD}.types"
    for alias in ("Key", "Rank", "Factors", "FactorTable", "RankTable"):
        assert declared.get(alias) == [types], alias
    assert _type_aliases("lite_whisper.compression.budget") == []  # the check itself sees `Key = tuple[int, str]`
    assert "Key" in [t.id for n in ast.parse("Key = tuple[int, str]").body for t in n.targets]


def test_own_modules_imported_lazily_only_through_the_declared_tables():
    """`importlib.import_module` is the one way around "imported at module top", and only two places take it:
    `lazy.lazy_names`, which resolves the public names of `lite_whisper` and of `lite_whisper.compression` on first
    use (so that importing them, for ConversionOptions say, does not import torch), and the CLI's command table
    (flags are parsed and checked before the commands' module, with torch and transformers, is imported)."""
    lazy = set()
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
                lazy.add(name)
    assert lazy == {"lite_whisper.lazy", "lite_whisper.cli"}


def _run(code: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *code], capture_output=True, text=True, env=env, timeout=120, **kwargs)


def test_the_public_names_come_from_lite_whisper():
    code = ("import sys, lite_whisper\n"
            "assert 'torch' not in sys.modules, 'import lite_whisper imported torch'\n"
            "from lite_whisper import (ConversionOptions, LiteWhisperConfig, LiteWhisperForConditionalGeneration,\n"
            "    LiteWhisperModel, RecoveryOptions, convert, evaluate_model, push_to_hub)\n"
            "assert set(lite_whisper.__all__) >= {'convert', 'ConversionOptions', 'RecoveryOptions', 'evaluate_model',\n"
            "    'push_to_hub', 'LiteWhisperForConditionalGeneration'}\n"
            "for name in lite_whisper.__all__:\n"
            "    getattr(lite_whisper, name)\n"
            "print(convert.__module__, evaluate_model.__module__, push_to_hub.__module__)\n")
    run = _run(["-c", code])
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["lite_whisper.compression.conversion", "lite_whisper.evaluation.evaluate",
                                  "lite_whisper.publish.hub"]


@pytest.mark.parametrize("flags, message", [
    (["--target-params", "7"], "--target-params 7.0: expected a fraction of the encoder in (0, 1]"),
    (["--threshold", "2:0.9"], "--threshold '2:0.9': expected ATTENTION:MLP energy fractions in (0, 1]"),
])
def test_a_bad_flag_is_answered_before_torch_is_imported(tmp_path, flags, message):
    run = _run(["-X", "importtime", "-m", "lite_whisper.cli", "convert", str(tmp_path / "base"), "--output",
                str(tmp_path / "out"), *flags])
    assert run.returncode == 2
    assert message in run.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "lite_whisper.cli.flags" in imported  # -X importtime did report the imports
    assert not {"torch", "transformers"} & imported
    assert not (tmp_path / "out").exists()
