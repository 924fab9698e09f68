"""The code's shape: no import cycle among mrspec's modules at import time, no module
over 500 lines and no function over 80.

Only imports that run when a module is imported count (module level, including ``try``
and ``if`` blocks, but not ``if TYPE_CHECKING:`` and not imports inside functions, which
are how commands and provisioners load heavy dependencies on demand).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import mrspec
from mrspec.aws.provisioner import make_provisioner
from mrspec.aws.state import RunRecord, StateStore
from mrspec.errors import RefusedError

ROOT = Path(mrspec.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += _import_time_statements(node.body)
            found += _import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                found += _import_time_statements(block)
            for handler in node.handlers:
                found += _import_time_statements(handler.body)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
    return found


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _import_time_statements(tree.body):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(node, name, path.name == "__init__.py")
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def fresh_import_graph() -> dict[str, set[str]]:
    """The graph, built in a fresh interpreter: CPython 3.11.7's ``ast.parse`` can raise
    "AST constructor recursion depth mismatch" in a process where another test has hit
    a RecursionError (the hostile-YAML tests do), a bug fixed in later 3.11 releases."""
    out = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return {name: set(targets) for name, targets in json.loads(out).items()}


def test_no_module_imports_itself_through_others() -> None:
    graph = fresh_import_graph()
    assert len(graph) > 50 and graph["mrspec.aws.driver"]  # the scan sees the real tree
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


MAX_MODULE_LINES = 500


def long_modules() -> dict[str, int]:
    """Every module of mrspec over ``MAX_MODULE_LINES`` lines, by its path."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found[path.relative_to(ROOT.parent).as_posix()] = lines
    return found


def test_no_module_is_over_500_lines() -> None:
    long = long_modules()
    assert long == {}, "split these modules"


MAX_FUNCTION_LINES = 80


def long_functions() -> dict[str, int]:
    """Every function or method of mrspec over ``MAX_FUNCTION_LINES`` lines (from its
    ``def`` to its last line, docstring included; a click command's option decorators are
    declarations, not code), as ``path:name``."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found[f"{path.relative_to(ROOT.parent).as_posix()}:{node.name}"] = lines
    return found


def fresh_long_functions() -> dict[str, int]:
    """``long_functions()`` in a fresh interpreter (``ast.parse``: see fresh_import_graph)."""
    out = subprocess.run(
        [sys.executable, __file__, "functions"], capture_output=True, text=True, check=True,
        timeout=120,
    ).stdout
    return {name: int(n) for name, n in json.loads(out).items()}


def test_no_function_is_over_80_lines() -> None:
    assert fresh_long_functions() == {}, "split these functions"


def test_an_unknown_provisioner_is_a_refusal_naming_the_choices(tmp_path: Path) -> None:
    record = RunRecord(
        job="j", run_id="r1", stack="j-r1", region="us-east-1", provisioner="chef", created_at=0.0
    )
    try:
        make_provisioner("chef", record, StateStore(tmp_path))
    except RefusedError as exc:
        assert "'chef'" in exc.message and "pulumi" in (exc.hint or "")
    else:
        raise AssertionError("an unknown provisioner was accepted")


if __name__ == "__main__":
    if sys.argv[1:] == ["functions"]:
        print(json.dumps(long_functions()))
    else:
        print(json.dumps({name: sorted(targets) for name, targets in import_graph().items()}))
