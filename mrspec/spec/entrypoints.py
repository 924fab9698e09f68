"""Static checks of ``module:function`` entrypoints: the user's code is parsed, never run.

A module ``a.b`` is the file ``a/b.py`` or the package ``a/b/__init__.py`` under
``code.path``. A function counts as defined when the module binds its name at top level:
a ``def``, an assignment (``combiner = reducer``) or an import (``from x import f``),
including inside top-level ``if``/``try``/``with`` blocks. A ``from x import *`` makes the
check give the benefit of the doubt.
"""

from __future__ import annotations

import ast
import difflib
from pathlib import Path

from mrspec import builtins

Binding = str  # "function", "async function", "class", "assignment", "import"


def module_file(code_path: Path, module: str) -> Path | None:
    """The file that defines ``module`` under ``code_path``, if there is one."""
    parts = module.split(".")
    base = code_path.joinpath(*parts)
    for candidate in (base.with_name(parts[-1] + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_level_bindings(
    tree: ast.Module, defs: dict[str, ast.FunctionDef] | None = None
) -> tuple[dict[str, Binding], bool]:
    """Names bound at module level and how, plus whether a ``*`` import was seen.
    ``defs`` (when given) receives the ``def`` node of each name bound by one."""
    names: dict[str, Binding] = {}
    found_defs: dict[str, ast.FunctionDef] = {} if defs is None else defs
    star = False

    def visit(body: list[ast.stmt]) -> None:
        nonlocal star
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef):
                names[stmt.name] = "function"
                found_defs[stmt.name] = stmt
            elif isinstance(stmt, ast.AsyncFunctionDef):
                names[stmt.name] = "async function"
            elif isinstance(stmt, ast.ClassDef):
                names[stmt.name] = "class"
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    for node in ast.walk(target):
                        if isinstance(node, ast.Name):
                            names[node.id] = "assignment"
            elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
                if isinstance(stmt.target, ast.Name):
                    names[stmt.target.id] = "assignment"
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    names[alias.asname or alias.name.split(".")[0]] = "import"
            elif isinstance(stmt, ast.ImportFrom):
                for alias in stmt.names:
                    if alias.name == "*":
                        star = True
                    else:
                        names[alias.asname or alias.name] = "import"
            elif isinstance(stmt, ast.If | ast.While | ast.For):
                visit(stmt.body)
                visit(stmt.orelse)
            elif isinstance(stmt, ast.With):
                visit(stmt.body)
            elif isinstance(stmt, ast.Try):
                visit(stmt.body)
                for handler in stmt.handlers:
                    visit(handler.body)
                visit(stmt.orelse)
                visit(stmt.finalbody)

    visit(tree.body)
    return names, star


def arity_problem(node: ast.FunctionDef, file: str, takes: int, role: str) -> str | None:
    """Whether ``def`` accepts being called with ``takes`` positional arguments."""
    params = [*node.args.posonlyargs, *node.args.args]
    required = len(params) - len(node.args.defaults)
    required_kw = [
        a.arg for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True) if d is None
    ]
    names = ", ".join(a.arg for a in params) or "nothing"
    where = f"{file}:{node.lineno}"
    if required > takes or (node.args.vararg is None and len(params) < takes):
        return (
            f"{node.name}() at {where} takes {len(params)} argument(s) ({names}); {role}"
        )
    if required_kw:
        return f"{node.name}() at {where} needs keyword argument(s) {', '.join(required_kw)}; {role}"
    return None


BUILTINS_MODULE = builtins.PREFIX.rstrip(":")  # "mrspec.builtins"


def is_builtin(entrypoint: str) -> bool:
    """Whether ``entrypoint`` names mrspec's built-in module (found in mrspec, not under
    ``code.path``)."""
    return entrypoint.partition(":")[0] == BUILTINS_MODULE


def builtin_problem(entrypoint: str, mapper: bool) -> str | None:
    """Why a ``mrspec.builtins:NAME`` entrypoint cannot serve, or ``None`` when it can."""
    name = entrypoint.partition(":")[2]
    names = sorted(builtins.AGGREGATORS)
    listed = ", ".join(f"'{BUILTINS_MODULE}:{n}'" for n in names)
    if mapper:
        return (
            f"{entrypoint!r} is reducer-shaped (a key and its values): a built-in can be "
            f"map.combiner or reduce.entrypoint, not the mapper ({listed})"
        )
    if name in builtins.AGGREGATORS:
        return None
    close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.5)
    hint = f"did you mean '{BUILTINS_MODULE}:{close[0]}'? " if close else ""
    return f"{BUILTINS_MODULE} has no {name!r}; {hint}the built-ins are {listed}"


def entrypoint_problem(
    code_path: Path, entrypoint: str, calls: tuple[int, str] | None = None
) -> str | None:
    """Why ``entrypoint`` cannot be found under ``code_path``, or ``None`` when it can.

    ``calls`` is ``(positional arguments, how it is called)``: when the entrypoint is a
    ``def`` whose parameters cannot take that call, that is the problem."""
    module, _, func = entrypoint.partition(":")
    path = module_file(code_path, module)
    if path is None:
        rel = module.replace(".", "/")
        if module.endswith(".py"):
            return f"module {module!r} not found; name the module without '.py': '{module[:-3]}:{func}'"
        near = difflib.get_close_matches(module, [BUILTINS_MODULE], n=1, cutoff=0.8)
        hint = f"; did you mean the built-in '{BUILTINS_MODULE}:{func}'?" if near else ""
        return (
            f"module {module!r} not found: neither {rel}.py nor {rel}/__init__.py exists "
            f"under code.path ({code_path}){hint}"
        )
    try:
        source = path.read_bytes()
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        return f"{path.name} has a syntax error at line {exc.lineno}: {exc.msg}"
    except (OSError, ValueError) as exc:
        return f"cannot read {path}: {exc}"
    defs: dict[str, ast.FunctionDef] = {}
    names, star = top_level_bindings(tree, defs)
    kind = names.get(func)
    if kind is None:
        if star:
            return None
        functions = sorted(n for n, k in names.items() if k != "class")
        close = difflib.get_close_matches(func, functions, n=1, cutoff=0.6)
        hint = f"; did you mean '{module}:{close[0]}'?" if close else ""
        if not close and functions:
            hint = f"; it defines {', '.join(functions[:8])}"
        return f"{path.name} defines no top-level function {func!r}{hint}"
    if kind == "class":
        return f"{func!r} in {path.name} is a class; the entrypoint must name a function"
    if kind == "async function":
        return f"{func!r} in {path.name} is an async function; mrspec calls plain functions"
    if calls is not None and func in defs:
        return arity_problem(defs[func], path.name, *calls)
    return None
