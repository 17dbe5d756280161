"""PromptRenderer: a system message that is the same for every item of a variety is
rendered once per variety, and never when it reads something of the item."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import Template

from moroccan_eval.prompts import PromptRenderer
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.schema import Item, TaskSpec


def _spec(system: str) -> TaskSpec:
    spec = load_suite("support-intents").tasks["intents"].spec
    prompt = spec.prompt.model_copy(update={"system": system, "user": "{{ text }}",
                                            "by_variety": {}})
    return spec.model_copy(update={"prompt": prompt})


def _items() -> list[Item]:
    return list(load_suite("support-intents").tasks["intents"].items("test"))[:40]


def _system(renderer: PromptRenderer, item: Item) -> str:
    return str(renderer.render(item)[0]["content"])


def test_a_per_variety_system_message_is_the_same_as_rendered_alone() -> None:
    spec = _spec("{{ variety }}: {{ labels|join(', ') }} {{ literals|length }}")
    shared = PromptRenderer(spec)
    for item in _items():
        assert _system(shared, item) == _system(PromptRenderer(spec), item)
    assert len({_system(shared, item) for item in _items()}) == len(
        {item["variety"] for item in _items()}) > 1


def test_a_system_message_that_reads_the_item_is_rendered_per_item() -> None:
    renderer = PromptRenderer(_spec("About: {{ text }}"))
    items = _items()
    assert [_system(renderer, item) for item in items] == [
        f"About: {item['fields']['text']}" for item in items]


def test_an_item_field_shadowing_a_per_variety_name_is_rendered_per_item() -> None:
    renderer = PromptRenderer(_spec("{{ labels }}"))
    first, second = _items()[:2]
    first = {**first, "fields": {**first["fields"], "labels": "mine"}}
    assert _system(renderer, second) != "mine"
    assert _system(renderer, first) == "mine"
    second = {**second, "variety": first["variety"], "fields": {**second["fields"],
                                                                  "labels": "other"}}
    assert _system(renderer, second) == "other"


def test_a_per_variety_system_message_is_rendered_once_per_variety(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import moroccan_eval.prompts as prompts

    renderer = PromptRenderer(_spec("{{ variety }} {{ labels|length }}"))
    items = _items()  # loading a suite renders prompts too: count only what follows
    rendered: list[str] = []
    real = prompts.render_bounded

    def counting(template: Template, context: dict[str, Any]) -> str:
        rendered.append(template.name or str(id(template)))
        return real(template, context)

    monkeypatch.setattr(prompts, "render_bounded", counting)
    for item in items:
        renderer.render(item)
    varieties = {item["variety"] for item in items}
    # one user message per item, one system message per variety
    assert len(rendered) == len(items) + len(varieties)
