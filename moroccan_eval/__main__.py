"""``python -m moroccan_eval`` is ``moroccan-eval``."""

from .cli import main

main(prog_name="moroccan-eval")
