"""Where task results live under a run's work prefix, and reading them back."""

from __future__ import annotations

import json
from typing import Any

from mrspec.storage import join, storage_for


def shuffle_uri(work_prefix: str, task_id: int, attempt: int) -> str:
    return join(work_prefix, "shuffle", f"map-{task_id:05d}-a{attempt}.shuffle")


def result_uri(work_prefix: str, kind: str, task_id: int) -> str:
    return join(work_prefix, "results", f"{kind}-{task_id:05d}.json")


def part_uri(output_prefix: str, index: int, token: str = "") -> str:
    from mrspec.runtime.replace import part_uri as impl  # the one owner of part names

    return impl(output_prefix, index, token)


def manifest_uri(output_prefix: str) -> str:
    return join(output_prefix, "_SUCCESS")


def store_result(work_prefix: str, result: dict[str, Any]) -> None:
    uri = result_uri(work_prefix, str(result["kind"]), int(result["task_id"]))
    storage_for(uri).write(uri, json.dumps(result, separators=(",", ":")).encode())


def load_results(work_prefix: str, kind: str) -> list[dict[str, Any]]:
    folder = join(work_prefix, "results")
    storage = storage_for(folder)
    found: list[dict[str, Any]] = []
    for info in storage.list(folder):
        name = info.uri.rsplit("/", 1)[-1]
        if name.startswith(f"{kind}-") and name.endswith(".json"):
            found.append(json.loads(storage.read(info.uri)))
    found.sort(key=lambda r: int(r["task_id"]))
    return found
