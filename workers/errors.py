"""The error kinds of Pantau, each telling the caller what to do with a failure."""

from __future__ import annotations


class PantauError(Exception):
    """Base of every error Pantau raises on purpose."""


class TransientError(PantauError):
    """A failure that may pass by itself (network, broker, receiver down): retry with backoff."""


class PermanentError(PantauError):
    """A failure that will happen again on retry: dead-letter the work with this reason."""


class InputError(PantauError):
    """Input the caller gave is unusable: tell the caller (HTTP 4xx, CLI exit 2), naming input and problem."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
