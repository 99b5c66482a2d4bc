"""Errors of the jobs module (messages in Chinese, without personal information)."""

from __future__ import annotations


class JobError(Exception):
    """A job cannot be registered, enqueued or changed as asked."""


class PermanentJobError(JobError):
    """Raised by a task when retrying cannot help: the job goes to the dead-letter list at once."""


class LeaseLost(JobError):
    """This attempt no longer holds its job (its lease ran out and another worker took it over)."""
