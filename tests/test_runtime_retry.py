"""The one retry policy (mrspec.runtime.retry) and the places that apply it: the state
machine's retriers, the Lambda handlers' error names, the local worker's outcomes."""

from __future__ import annotations

import pytest

from mrspec.aws.asl import retriers
from mrspec.errors import JobFailedError
from mrspec.runtime import retry
from mrspec.runtime.errors import BadRecordLimitError, TaskFailedError, UserCodeError


@pytest.mark.parametrize(
    ("exc", "again"),
    [
        (TaskFailedError("plan mismatch"), False),
        (BadRecordLimitError("too many bad records"), False),
        (UserCodeError("the reducer raised"), True),
        (JobFailedError("anything else of mrspec's"), True),
        (ValueError("the job's own error"), True),
        (MemoryError(), True),
    ],
)
def test_only_task_failures_are_not_retried(exc: BaseException, again: bool) -> None:
    assert retry.retryable(exc) is again
    reported = retry.reported(exc)
    if again:
        assert reported is exc  # reported under its own name: the retriers retry it
    else:
        assert type(reported).__name__ == retry.NON_RETRYABLE_NAME
        assert type(exc).__name__ in str(reported) or reported is exc


@pytest.mark.parametrize("attempts", [1, 2, 5])
def test_the_state_machine_retries_as_the_policy_says(attempts: int) -> None:
    rules = retriers(attempts)
    task_rules = [r for r in rules if "States.ALL" in r["ErrorEquals"]]
    if attempts == 1:
        assert not task_rules  # nothing to retry
        return
    skip = next(r for r in rules if r["ErrorEquals"] == [retry.NON_RETRYABLE_NAME])
    assert skip["MaxAttempts"] == 0 and rules.index(skip) < rules.index(task_rules[0])
    (rule,) = task_rules
    assert rule["MaxAttempts"] == attempts - 1 and rule["JitterStrategy"] == "FULL"
    # the waits Step Functions computes from the rule (before jitter) are the policy's
    waits = [rule["IntervalSeconds"] * rule["BackoffRate"] ** i for i in range(rule["MaxAttempts"])]
    assert waits == retry.retry_bounds(attempts)


def test_local_retry_delays_stay_within_the_policy_bounds() -> None:
    for attempt in range(1, 8):
        bound = min(retry.RETRY_CAP_S, retry.retry_bounds(attempt + 1)[-1])
        delays = [retry.retry_delay(attempt) for _ in range(300)]
        assert all(0.0 <= d <= bound for d in delays)
        assert max(delays) > bound / 2  # full jitter reaches up to the bound
