"""Import the job's functions (``"module:function"``) from its code folder."""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mrspec import api
from mrspec.runtime.errors import TaskFailedError


def pairs_of(out: Any) -> Any:
    """What a mapper, combiner or reducer returned, as its pairs: ``None`` means none.
    Anything else is iterated as it is, so a stray ``0`` or ``False`` fails loudly instead
    of emitting nothing."""
    return () if out is None else out


@contextlib.contextmanager
def task_scope(params: Mapping[str, Any] | None = None) -> Iterator[api.TaskContext]:
    """Run a task's body: a fresh ``api.TaskContext`` (with the job's ``params``)
    installed for its user code, and the
    cyclic collector off (a task holds millions of containers, the map buffer or the
    merge batches, that every collection would rescan). Both are restored on the way out.
    """
    context = api.TaskContext(params)
    previous = api.install(context)
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        yield context
    finally:
        api.install(previous)
        if gc_enabled:
            gc.enable()


def load_entrypoint(code_path: str, ref: str, role: str) -> Callable[..., Any]:
    """The callable ``ref`` names; ``role`` ("mapper", ...) words the error."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise TaskFailedError(f"{role} entrypoint {ref!r} is not 'module:function'")
    if code_path:
        code_path = os.path.abspath(code_path)
        if code_path not in sys.path:
            sys.path.insert(0, code_path)
        loaded = sys.modules.get(module_name)
        origin = getattr(loaded, "__file__", None) or ""
        if loaded is not None and not os.path.abspath(origin).startswith(code_path + os.sep):
            # a module of the same name from another job's folder (tests run several)
            del sys.modules[module_name]
            sys.path.remove(code_path)
            sys.path.insert(0, code_path)
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise TaskFailedError(
            f"cannot import the {role} module {module_name!r} from {code_path or 'sys.path'}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise TaskFailedError(
                f"the {role} {ref!r}: module {module_name!r} has no attribute {attr!r}"
            ) from exc
    if not callable(obj):
        raise TaskFailedError(f"the {role} {ref!r} is not callable")
    fn: Callable[..., Any] = obj
    return fn
