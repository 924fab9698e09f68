"""Replacing an existing output without ever losing it (``apply --overwrite``).

The one owner of the output's part names. The old output stays whole until the new run
has committed::

    prepare  (list the old objects; refuse unless --overwrite; pick a part token)
      -> tasks write part-NNNNN-<token>   (names no old object can have)
      -> commit writes _SUCCESS           (one write: a reader sees the old or the new)
      -> finish removes the old objects   (only those listed at prepare time)

A failed run removes only its own ``part-NNNNN-<token>`` objects (``discard``): the old
output and its ``_SUCCESS`` are untouched. When the prefix was empty the token is ``""``
and parts keep their plain ``part-NNNNN`` names.

Standard library only (it runs in Lambda's commit too).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from mrspec.errors import RefusedError
from mrspec.storage import join, storage_for

MANIFEST_NAME = "_SUCCESS"
_TOKEN = re.compile(r"^[a-z0-9]{1,32}$")


def part_name(index: int, token: str = "") -> str:
    """``part-00003``, or ``part-00003-<token>`` for a run replacing an output."""
    return f"part-{index:05d}-{token}" if token else f"part-{index:05d}"


def part_uri(output_prefix: str, index: int, token: str = "") -> str:
    return join(output_prefix, part_name(index, token))


def is_run_part(name: str, token: str) -> bool:
    """Whether the object name is a part (or a part's temporary file) of the run ``token``."""
    plain = name.lstrip(".")
    if token:
        return re.match(rf"^part-\d{{5,}}-{re.escape(token)}(\.|$)", plain) is not None
    return plain.startswith("part-")


def _listing(prefix: str) -> str:
    return prefix.rstrip("/") + "/"


@dataclass(frozen=True)
class Replacement:
    """What a run replaces: the old objects (removed only after the new commit) and the
    token its parts carry. JSON form: ``to_json`` / ``from_json``."""

    prefix: str
    token: str = ""
    old: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"prefix": self.prefix, "token": self.token, "old": list(self.old)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Replacement:
        old = data.get("old") or []
        assert isinstance(old, list)
        return cls(str(data["prefix"]), str(data.get("token", "")), tuple(str(u) for u in old))


def _taken(token: str, uris: list[str]) -> bool:
    return any(token in uri.rsplit("/", 1)[-1] for uri in uris)


def new_token(existing: list[str]) -> str:
    """A short random token that no listed object's name carries already."""
    while True:
        token = secrets.token_hex(4)
        if not _taken(token, existing):
            return token


def prepare(prefix: str, *, overwrite: bool, token: str | None = None) -> Replacement:
    """Refuse a non-empty output unless ``overwrite``; never removes anything."""
    existing = [o.uri for o in storage_for(prefix).list(_listing(prefix))]
    if not existing:
        return Replacement(prefix)
    if not overwrite:
        raise RefusedError(
            f"the output prefix {prefix} already holds {len(existing)} object(s), "
            f"for example {existing[0]}",
            hint="pass --overwrite to replace that output (it is kept until the new run "
            "has committed), or change output.prefix in the spec",
        )
    if token is None or not _TOKEN.match(token) or _taken(token, existing):
        token = new_token(existing)
    return Replacement(prefix, token, tuple(existing))


def finish(replacement: Replacement, kept: list[str]) -> int:
    """After the new ``_SUCCESS`` is written: remove the old objects, except the manifest
    (now the new one) and anything the new run wrote (``kept``). Returns how many."""
    manifest = join(replacement.prefix, MANIFEST_NAME)
    keep = {manifest, *kept}
    doomed = [uri for uri in replacement.old if uri not in keep]
    if doomed:
        storage_for(replacement.prefix).delete(doomed)
    return len(doomed)


def discard(prefix: str, token: str) -> None:
    """A run that did not commit: remove its own parts, nothing else. With no token the
    prefix was empty at the start, so its ``_SUCCESS`` (if any) is this run's too."""
    storage = storage_for(prefix)
    names = [(o.uri, o.uri.rsplit("/", 1)[-1]) for o in storage.list(_listing(prefix))]
    if not token:
        storage.delete([uri for uri, name in names if name == MANIFEST_NAME])
    storage.delete([uri for uri, name in names if is_run_part(name, token)])
