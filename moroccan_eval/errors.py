"""The error hierarchy. The CLI turns every :class:`MoroccanEvalError` into one message.

A user error (bad YAML, missing file, unknown variety, bad credentials ...) must never
surface as a traceback: library code raises one of these classes with a message that
names the file or field and says what to do, and the CLI prints it and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MoroccanEvalError(Exception):
    """Base class of every error meant for the user. ``exit_code`` is the CLI's exit status.

    ``problems`` lists every problem found at once (mkdocs-style validation): the message
    then reads ``title (n problem(s)):`` followed by one indented line per problem.
    """

    exit_code = 1

    def __init__(self, message: str, problems: Iterable[str] = ()):
        self.problems = list(problems)
        if self.problems:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{message} ({len(self.problems)} problem(s)):\n{lines}"
        super().__init__(message)


class ConfigError(MoroccanEvalError):
    """A YAML/JSON configuration (model spec, suite.yaml, task) is invalid or missing."""

    exit_code = 2


class SuiteError(MoroccanEvalError):
    """A suite cannot be loaded: missing file, checksum mismatch, bad card, bad items."""

    exit_code = 2


class AdapterError(MoroccanEvalError):
    """A model adapter failed to produce a response.

    ``retryable`` errors (429, 5xx, timeouts, dropped connections) are retried by the runner
    with backoff; ``retry_after`` carries the server's ``Retry-After`` hint in seconds.
    """

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class RunError(MoroccanEvalError):
    """A run cannot start or its results cannot be read."""


class Interrupted(RunError):
    """A run was stopped by SIGTERM; its directory is marked ``interrupted``."""

    exit_code = 143  # 128 + SIGTERM, what shells report for a terminated process


class OutputError(MoroccanEvalError):
    """An output file cannot be written where the user asked."""


class MoroccanEvalWarning(UserWarning):
    """Something the user should fix but that does not stop the command (a deprecated
    field); the CLI prints it as one ``warning:`` line."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
