"""The error hierarchy. The CLI turns every :class:`MoroccanEvalError` into one message.

A user error (bad YAML, missing file, unknown variety, bad credentials ...) must never
surface as a traceback: library code raises one of these classes with a message that
names the file or field and says what to do, and the CLI prints it and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class MoroccanEvalError(Exception):
    """Base class of every error meant for the user. ``exit_code`` is the CLI's exit status.

    ``problems`` lists every problem found at once (mkdocs-style validation): the message
    then reads ``title (n problem(s)):`` followed by one indented line per problem.
    """

    exit_code = 1

    def __init__(self, message: str, problems: Iterable[str] = ()):
        self.problems = list(problems)
        if self.problems:
            # a problem may list problems of its own (a suite's): indented under it
            lines = "\n".join("  - " + p.replace("\n", "\n  ") for p in self.problems)
            message = f"{message} ({len(self.problems)} problem(s)):\n{lines}"
        super().__init__(message)


class Problems:
    """The user errors of checks that do not depend on each other, collected so that one
    message names all of them (a run's models, suite and varieties; the run directories of
    a report) instead of one per attempt."""

    def __init__(self) -> None:
        self.errors: list[MoroccanEvalError] = []

    def add(self, error: MoroccanEvalError) -> None:
        """Keep a problem found without raising it."""
        self.errors.append(error)

    def attempt(self, check: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``check(*args, **kwargs)``, or ``None`` with its error kept for
        :meth:`raise_any`."""
        try:
            return check(*args, **kwargs)
        except MoroccanEvalError as exc:
            self.errors.append(exc)
            return None

    def raise_any(self, title: str) -> None:
        """Raise the one error kept as it is, or one listing them all under ``title`` with
        the highest of their exit codes."""
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            combined = MoroccanEvalError(title, [str(e) for e in self.errors])
            combined.exit_code = max(e.exit_code for e in self.errors)
            raise combined


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
