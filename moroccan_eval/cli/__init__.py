"""The ``moroccan-eval`` command line. Thin: parse options, call the library, print.

One module per command group (:mod:`.run`, :mod:`.results`, :mod:`.suites`,
:mod:`.privacy`, :mod:`.models`), joined here. Library modules are imported inside the
commands, so ``--help`` starts fast.
"""

from __future__ import annotations

import gc
import sys
import warnings
from typing import Any

import click

from ..errors import MoroccanEvalError, MoroccanEvalWarning
from ..version import __version__
from .leaderboard import leaderboard
from .models import models
from .privacy import anonymize, consent, retention
from .results import compare, export, recommend, report, rescore, verify
from .run import demo, merge, run
from .suites import suites, tasks


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    click.echo(f"warning: {message}", err=True)


class _Group(click.Group):
    """Turns library errors into one message and an exit code: never a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The command line's entry point (tests call :meth:`main`): the process exits
        after it, so every object left is frozen out of the collector first. The final
        collections of the interpreter's exit then skip them (about 0.1 s of every command,
        with numpy, pydantic and aiohttp loaded); objects are still freed as their last
        reference goes."""
        try:
            return self.main(*args, **kwargs)
        finally:
            gc.freeze()

    def invoke(self, ctx: click.Context) -> Any:
        warnings.showwarning = _show_warning
        warnings.simplefilter("default", MoroccanEvalWarning)
        try:
            return super().invoke(ctx)
        except MoroccanEvalError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:  # output piped into e.g. `head`: not an error
            sys.stderr.close()
            ctx.exit(0)
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            click.echo(f"error: cannot access{where}: {exc.strerror or exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted; re-run the same command to resume from the cache", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="moroccan-eval")
def main() -> None:
    """Evaluate language models on Darija (Arabic and Latin script), Moroccan French,
    MSA, Amazigh and Darija–French code-switching; report per-variety degradation,
    latency and cost."""


for _command in (run, merge, demo, report, recommend, compare, verify, export, rescore, suites,
                 tasks, anonymize, consent, retention, models, leaderboard):
    main.add_command(_command)
