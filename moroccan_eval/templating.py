"""Template errors as user errors. Reports and the leaderboard site take templates a user
overrides (``--template-dir``); one that does not parse or fails while rendering is one
message naming its file and line, not a traceback."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from jinja2 import TemplateError, TemplateSyntaxError

from .errors import OutputError

_HINT = "fix the template, or remove it from --template-dir to use the shipped one"


@contextmanager
def template_errors() -> Iterator[None]:
    """Turn a Jinja2 error raised inside the block into an :class:`OutputError`."""
    try:
        yield
    except TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name}:{exc.lineno}"
        raise OutputError(f"{where}: template error: {exc.message}; {_HINT}") from None
    except TemplateError as exc:
        raise OutputError(f"{_where(exc)}template error: {exc.message}; {_HINT}") from None


def _where(exc: TemplateError) -> str:
    """``file:line: `` of the innermost template frame (Jinja2 rewrites the traceback so
    that frames point into template sources, marking them ``__jinja_exception__``)."""
    where = ""
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if "__jinja_exception__" in frame.f_globals:
            where = f"{frame.f_code.co_filename}:{lineno}: "
    return where
