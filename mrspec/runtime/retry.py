"""The retry policy of task attempts, one owner for the local pool, the Lambda handlers
and the state machine's retriers.

- **What is retried**: every failed attempt, except a :class:`TaskFailedError` (and its
  subclasses): the task itself said the same input will fail again (a bad-record limit,
  a malformed plan). Memory, timeouts, crashes and the job's own exceptions are retried:
  their cause may be transient.
- **Under which name**: Step Functions matches retriers by error name, so a handler
  reports every non-retryable error as :data:`NON_RETRYABLE_NAME` (its failure record
  keeps the precise class).
- **How long to wait**: exponential backoff from :data:`RETRY_BASE_S`, doubling, with
  full jitter (a random wait up to the bound, so the retries of many tasks spread out),
  as the state machine's retriers do (``JitterStrategy: FULL``); the local pool caps
  the bound at :data:`RETRY_CAP_S`.
"""

from __future__ import annotations

import random

from mrspec.runtime.errors import TaskFailedError

RETRY_BASE_S = 1  # whole seconds: an ASL retrier's IntervalSeconds (moto rejects 0)
RETRY_BACKOFF = 2.0
RETRY_CAP_S = 30.0
NON_RETRYABLE_NAME = TaskFailedError.__name__


def retryable(exc: BaseException) -> bool:
    """Whether another attempt on the same input may succeed."""
    return not isinstance(exc, TaskFailedError)


def reported(exc: BaseException) -> BaseException:
    """The exception a Lambda handler raises for ``exc``: a non-retryable one under
    :data:`NON_RETRYABLE_NAME` (so the retriers skip it), any other as it is."""
    if retryable(exc) or type(exc) is TaskFailedError:
        return exc
    return TaskFailedError(f"{type(exc).__name__}: {exc}")


def retry_bounds(max_attempts: int) -> list[float]:
    """The longest wait before each retry (``max_attempts - 1`` of them), as the state
    machine's retrier computes them before jitter."""
    return [RETRY_BASE_S * RETRY_BACKOFF**i for i in range(max_attempts - 1)]


def retry_delay(attempt: int, base: float = RETRY_BASE_S, cap: float = RETRY_CAP_S) -> float:
    """Seconds to wait before retrying after failed attempt ``attempt`` (full jitter)."""
    return random.uniform(0.0, min(cap, base * RETRY_BACKOFF ** (attempt - 1)))
