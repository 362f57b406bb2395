"""Error classes that decide whether Airflow retries a task."""

from __future__ import annotations


class NotRetryable(RuntimeError):
    """A failure that a retry cannot fix (misconfiguration, refused credentials, edited
    migration): the task fails at once, with a message that says what to fix."""


class NoSitoo(NotRetryable):
    """The merchant has no Sitoo connection (no stores), and something needed Sitoo."""
