"""``models``: list built-in and example models, check that a model answers."""

from __future__ import annotations

import click

from ..errors import MoroccanEvalError
from .common import epilog

CHECK_PROMPT = "Reply with the single word: ok"


@click.group(epilog=epilog("models"))
def models() -> None:
    """List example model specs and check that a model answers."""


@models.command("list")
def models_list() -> None:
    """Built-in models, shipped example specs and available adapters."""
    from ..adapters import BUILTIN_MODELS, adapter_names, load_model
    from ..resources import shipped

    click.echo("built-in (no YAML needed):")
    for name in BUILTIN_MODELS:
        click.echo(f"  {name}")
    click.echo("example specs (models/):")
    for path in sorted(shipped("models").glob("*.yaml")):
        try:
            spec = load_model(str(path))
            click.echo(f"  {path.stem:<24} adapter={spec.adapter:<14} {spec.name}")
        except MoroccanEvalError as exc:
            click.echo(f"  {path.stem:<24} INVALID: {str(exc).splitlines()[0]}")
    click.echo(f"adapters: {', '.join(adapter_names())}")


@models.command("check")
@click.argument("model")
@click.option("--prompt", default=CHECK_PROMPT, show_default=True)
def models_check(model: str, prompt: str) -> None:
    """Validate a model spec and send it one request. With the default prompt, the answer
    must be "ok": anything else (an echoed prompt, chat-template tokens) fails the check."""
    from ..adapters import load_model
    from ..adapters.check import check_model
    from ..tasks.classification import CHAT_TOKENS
    from ..text import normalize

    spec = load_model(model)
    result = check_model(spec, prompt)
    response = result.response
    summary = (f"{spec.name} answered in {response.latency_ms:.0f} ms "
               f"({response.input_tokens} tokens in, {response.output_tokens} out, "
               f"{result.attempts} attempt(s)): {response.text[:200]!r}")
    if prompt == CHECK_PROMPT and (normalize(response.text).strip(" .!") != "ok"
                                   or CHAT_TOKENS.search(response.text)):
        raise MoroccanEvalError(
            f"{summary}\n  it did not follow the instruction (answer 'ok'): a base model that "
            "continues its prompt, a wrong chat template or a wrong model name; most of its "
            "answers would be unparsed. Use an instruction-tuned model or fix the template.")
    click.echo(f"ok: {summary}")
