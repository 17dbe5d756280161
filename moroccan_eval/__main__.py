"""``python -m moroccan_eval`` is ``moroccan-eval``."""

from . import collector


def main() -> None:
    """The ``moroccan-eval`` command (its console script)."""
    with collector.paused():  # importing the command line makes long-lived objects only
        from .cli import main as command_line
    command_line(prog_name="moroccan-eval")


if __name__ == "__main__":
    main()
