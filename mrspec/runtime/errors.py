"""Errors raised by task code (standard library only)."""

from __future__ import annotations

from mrspec.errors import JobFailedError


class TaskFailedError(JobFailedError):
    """A task cannot complete, and retrying the same input will not help.

    The message names the task and the cause. In Lambda, the class name becomes the
    error type a Step Functions execution reports.
    """


class BadRecordLimitError(TaskFailedError):
    """More records were skipped than ``limits.max_bad_records`` allows."""


class UserCodeError(JobFailedError):
    """The job's own code raised where no record can be skipped (a task-level mapper,
    the combiner, the reducer). Retried like any failed attempt: the cause may be
    transient (a service the function calls)."""
