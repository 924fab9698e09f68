"""Job parameters: the one owner of their names, types and ``--param`` overrides.

A spec's ``params:`` maps names to strings, numbers or booleans. ``mrspec apply`` and
``mrspec plan`` take ``--param name=value`` (repeatable); :func:`with_overrides` reads
each value as the type of the spec's value (``n: 10`` makes ``--param n=20`` the integer
20), refuses unknown names and values of the wrong type, and returns the spec with the
new values and a digest that covers them (the digest of a spec without overrides is the
file's sha256, unchanged). The values reach the job's functions through
``TaskConfig.params`` and ``mrspec.api.params()``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from mrspec.errors import MrspecError
from mrspec.spec.model import JobSpec, ParamValue

NAME_MAX = 64
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class ParamError(MrspecError):
    """A ``--param`` names no parameter of the spec or has a value of the wrong type."""


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a parameter (``None`` when it can)."""
    if not name:
        return "a parameter name cannot be empty"
    if len(name) > NAME_MAX:
        return f"the parameter name is {len(name)} characters; at most {NAME_MAX} are allowed"
    if _NAME.match(name):
        return None
    fixed = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    fixed = re.sub(r"^[0-9]+", "", fixed)
    hint = f"; for example {fixed!r}" if fixed and _NAME.match(fixed) else ""
    return (
        f"the parameter name {name!r} may only hold letters, digits and underscores, "
        f"not starting with a digit{hint}"
    )


def frozen(values: Mapping[str, ParamValue]) -> Mapping[str, ParamValue]:
    """A read-only copy of ``values``, in name order (so JSON forms are stable)."""
    return MappingProxyType({k: values[k] for k in sorted(values)})


def type_word(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return "a string"


def convert(name: str, text: str, like: ParamValue) -> ParamValue:
    """``text`` read as the type of ``like`` (the spec's value of parameter ``name``)."""
    shown = f"--param {name}={text}"
    wanted = f"{name} is {type_word(like)} in the spec ({json.dumps(like)})"
    if isinstance(like, bool):
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise ParamError(f"{shown}: {wanted}", hint=f"write --param {name}=true or {name}=false")
    if isinstance(like, int):
        try:
            return int(text.strip())
        except ValueError:
            raise ParamError(f"{shown}: {wanted}", hint=f"write a whole number, e.g. {like}") from None
    if isinstance(like, float):
        try:
            number = float(text.strip())
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ParamError(f"{shown}: {wanted}", hint=f"write a finite number, e.g. {like}")
        return number
    return text


def parse_override(text: str) -> tuple[str, str]:
    """``"name=value"`` -> ``("name", "value")`` (the value may hold ``=``)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ParamError(
            f"--param {text!r} is not NAME=VALUE", hint="write it like --param n=10"
        )
    return name, value


def with_overrides(spec: JobSpec, overrides: Sequence[str]) -> JobSpec:
    """``spec`` with the ``--param NAME=VALUE`` overrides applied (each checked)."""
    if not overrides:
        return spec
    values = dict(spec.params)
    for text in overrides:
        name, raw = parse_override(text)
        if name not in spec.params:
            raise ParamError(f"--param {name}: the spec has no parameter {name!r}",
                             hint=_known_hint(spec, name))
        values[name] = convert(name, raw, spec.params[name])
    return dataclasses.replace(
        spec, params=frozen(values), digest=digest_with(spec.digest, values)
    )


def digest_with(file_digest: str, values: Mapping[str, ParamValue]) -> str:
    """The digest of a spec file run with overridden parameter ``values``."""
    canonical = json.dumps(dict(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{file_digest}\nparams:{canonical}".encode()).hexdigest()


def _known_hint(spec: JobSpec, name: str) -> str:
    from mrspec.spec.schema import suggest

    if not spec.params:
        return "the spec has no params: section; add the parameter there with its default"
    names = sorted(spec.params)
    guess = suggest(name, names)
    known = "its parameters are: " + ", ".join(names)
    return f"did you mean {guess!r}? {known}" if guess else known
