"""A reduce-side join of users and orders on the user id.

Both inputs are TSV files: ``users/*.tsv`` holds ``user_id, name, country`` and
``orders/*.tsv`` holds ``order_id, user_id, item, amount``. The mapper tells them apart
with ``mrspec.api.input_uri()`` and tags each value with its side; the reducer gets, for
one user id, the user row and all of that user's orders, and emits one joined row per
order (an inner join). Orders without a user are counted, not emitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from mrspec.api import increment, input_uri


def side(uri: str) -> str:
    """``users`` or ``orders``: the name of the folder the input object is in."""
    parts = uri.replace("\\", "/").split("/")
    return parts[-2] if len(parts) >= 2 else ""


def mapper(line: str) -> Iterator[tuple[str, list[Any]]]:
    """``(user_id, ["user", name, country])`` or ``(user_id, ["order", id, item, amount])``."""
    fields = line.split("\t")
    which = side(input_uri() or "")
    if which == "users" and len(fields) == 3:
        user_id, name, country = fields
        yield user_id, ["user", name, country]
    elif which == "orders" and len(fields) == 4:
        order_id, user_id, item, amount = fields
        yield user_id, ["order", order_id, item, float(amount)]
    elif line.strip():
        increment("malformed_lines")


def reducer(user_id: str, tagged: Iterable[list[Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """One ``(order_id, joined row)`` pair per order of a known user."""
    user: list[Any] | None = None
    orders: list[list[Any]] = []
    for value in tagged:
        if value[0] == "user":
            user = value
        else:
            orders.append(value)
    if user is None:
        increment("orders_without_user", len(orders))
        return
    _, name, country = user
    for _, order_id, item, amount in sorted(orders):
        yield (
            order_id,
            {
                "user_id": user_id,
                "name": name,
                "country": country,
                "item": item,
                "amount": amount,
            },
        )
