"""PromptRenderer: a system message that is the same for every item of a variety is
rendered once per variety, and never when it reads something of the item; so are the parts
of a user message that read only per-variety values (the list of labels), and the message
is the one the whole template renders."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import Template

from moroccan_eval.errors import ConfigError
from moroccan_eval.prompts import PromptRenderer, _PartTemplate
from moroccan_eval.suites.loader import load_suite, suite_dirs
from moroccan_eval.suites.schema import Item, TaskSpec


def _spec(system: str, user: str = "{{ text }}") -> TaskSpec:
    spec = load_suite("support-intents").tasks["intents"].spec
    prompt = spec.prompt.model_copy(update={"system": system, "user": user,
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


def _counting_jinja(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The varieties of every Jinja rendering from now on."""
    import moroccan_eval.prompts as prompts

    rendered: list[str] = []
    real = prompts.render_bounded

    def counting(template: Template, context: dict[str, Any]) -> str:
        rendered.append(str(context["variety"]))
        return real(template, context)

    monkeypatch.setattr(prompts, "render_bounded", counting)
    return rendered


def test_a_per_variety_system_message_is_rendered_once_per_variety(
        monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = PromptRenderer(_spec("{{ variety }} {{ labels|length }}"))
    items = _items()  # loading a suite renders prompts too: count only what follows
    rendered = _counting_jinja(monkeypatch)
    for item in items:
        renderer.render(item)
    # the user message is filled in without Jinja; the system message once per variety
    assert sorted(rendered) == sorted({item["variety"] for item in items})


def _rendered_whole(renderer: PromptRenderer, item: Item) -> list[dict[str, str]]:
    """The messages with every template rendered whole by Jinja, per item."""
    parts = [part for t in (renderer._default, *renderer._templates.values())
             for part in (t.system, t.user) if part is not None]
    saved = [(part._constant, part.whole.plan) for part in parts]
    try:
        for part in parts:
            part._constant, part.whole.plan = [], None
        return renderer.render(item)
    finally:
        for part, (constant, plan) in zip(parts, saved, strict=True):
            part._constant, part.whole.plan = constant, plan


def test_every_shipped_prompt_renders_as_the_whole_template_does() -> None:
    split = 0
    for name in suite_dirs():
        suite = load_suite(name)
        for task in suite.tasks.values():
            renderer = PromptRenderer(task.spec, list(task.items("train")), seed=3,
                                      context=task.context)
            split += bool(renderer._default.user._constant)
            for item in task.items("test"):
                assert renderer.render(item) == _rendered_whole(renderer, item), \
                    (name, task.name, item["id"])
    assert split >= 3  # the label lists of the classification tasks are rendered once


@pytest.mark.parametrize("user", [
    "{{ variety }} {{ literals|length }} {% for l in labels %}{{ loop.index }}. {{ l }}: "
    "{{ label_descriptions[l] }}\n{% endfor %}Message: {{ text }}",
    "{%- for l in labels -%} {{ l }} {%- endfor %}\n{% if labels %}yes{% else %}no{% endif %}"
    "{{ text }}",
    "{% set n = labels|length %}{% for l in labels %}{{ n }}{{ l }}{% endfor %}{{ text }}",
    "{% for l in labels %}{{ l }}{% if text %}!{% endif %}{% endfor %}",
    "{% for l in labels %}{{ l }}{% endfor %}{{ labels|random }}{{ text }}",
    "{% for e in examples %}{{ e.reference }}{% endfor %}{% for l in labels %}{{ l }}"
    "{% endfor %}{{ text }}",
    "{% macro m(x) %}[{{ x }}]{% endmacro %}{% for l in labels %}{{ m(l) }}{% endfor %}"
    "{{ text }}",
    "{% set labels = ['x'] %}{% for l in labels %}{{ l }}{% endfor %}{{ text }}",
    "{% if text %}{% set labels = ['y'] %}{% endif %}{% for l in labels %}{{ l }}{% endfor %}",
    "{% for l in labels %}{{ l }}{% endfor %}{% set variety = 'z' %}{{ variety }}{{ text }}",
])
def test_a_user_message_rendered_in_parts_is_the_whole_templates(user: str) -> None:
    renderer = PromptRenderer(_spec("", user), seed=1)
    for item in _items():
        messages = renderer.render(item)
        if "random" not in user:
            assert messages == _rendered_whole(renderer, item)


def test_what_reads_the_item_or_binds_a_name_is_not_rendered_apart() -> None:
    assert _PartTemplate("{% for l in labels %}{{ l }}{% endfor %}{{ text }}")._constant == [0]
    for user in ("{% for l in labels %}{{ text }}{% endfor %}",
                 "{% set n = 1 %}{% for l in labels %}{{ n }}{% endfor %}",
                 "{% for l in labels %}{% set x = l %}{{ x }}{% endfor %}",
                 "{{ labels|random }}", "{% for e in examples %}{{ e }}{% endfor %}",
                 "{% for l in meta %}{{ l }}{% endfor %}",
                 "{% if x %}{% set labels = [] %}{% endif %}{% for l in labels %}{% endfor %}"):
        assert _PartTemplate(user)._constant == [], user


def test_an_item_field_shadowing_a_label_list_is_read_from_the_item() -> None:
    renderer = PromptRenderer(_spec("", "{% for l in labels %}{{ l }},{% endfor %}{{ text }}"))
    second = _items()[1]
    renderer.render(second)  # the variety's label list is now rendered
    second = {**second, "fields": {**second["fields"], "labels": ["mine"]}}
    assert renderer.render(second)[-1]["content"] == f"mine,{second['fields']['text']}"


def test_the_label_list_of_a_user_message_is_rendered_once_per_variety(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import moroccan_eval.prompts as prompts

    renderer = PromptRenderer(_spec("", "{% for l in labels %}{{ l }}{% endfor %}{{ text }}"))
    items = _items()
    loops: list[int] = []
    real = prompts._bounded_iter

    def counting(*args: Any, **kwargs: Any) -> Any:
        loops.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(prompts, "_bounded_iter", counting)
    monkeypatch.setattr(prompts._ENV, "bounded_iter", counting)
    for item in items:
        renderer.render(item)
    assert 0 < len(loops) == len({item["variety"] for item in items})


@pytest.mark.parametrize("user", ["Message: {{ text }}", "{{ text }}{{ meta }}{{ range }}",
                                  "{{ text }} {{ undefined_name }}"])
def test_text_around_fields_is_filled_in_as_jinja_prints_it(user: str) -> None:
    renderer = PromptRenderer(_spec("", user))
    for item in _items()[:5]:
        for fields in (item["fields"], {**item["fields"], "text": 12.5},
                       {**item["fields"], "text": None}):
            changed = {**item, "fields": fields}
            try:
                whole = _rendered_whole(renderer, changed)
            except Exception as exc:  # the same error both ways
                with pytest.raises(type(exc)):
                    renderer.render(changed)
            else:
                assert renderer.render(changed) == whole


def test_a_filled_in_prompt_over_the_limit_is_refused() -> None:
    import moroccan_eval.prompts as prompts

    item = _items()[0]
    long = {**item, "fields": {**item["fields"], "text": "x" * (prompts.MAX_PROMPT_CHARS + 1)}}
    for user in ("{{ text }}", "{{ text }}{% if true %}{% endif %}"):  # filled in; Jinja
        with pytest.raises(ConfigError, match="over 1,000,000 characters"):
            PromptRenderer(_spec("", user)).render(long)


def test_variety_overrides_sharing_a_message_render_as_each_template_alone() -> None:
    """An override that changes the system message only shares the user template with the
    default (compiled once); each variety still gets its own per-variety parts."""
    user = "{% for l in labels %}{{ l }}/{{ variety }} {% endfor %}{{ text }}"
    items = _items()
    override = items[0]["variety"]
    spec = _spec("default {{ variety }}", user)
    spec = spec.model_copy(update={"prompt": spec.prompt.model_copy(update={
        "by_variety": {override: {"system": "override {{ variety }}"}}})})
    shared = PromptRenderer(spec)
    assert shared._templates[override].user is shared._default.user
    for item in items:
        kind = "override" if item["variety"] == override else "default"
        system, message = (m["content"] for m in shared.render(item))
        assert system == f"{kind} {item['variety']}"
        assert message == Template(user).render(labels=spec.labels, variety=item["variety"],
                                                text=item["fields"]["text"])
    assert len({item["variety"] for item in items}) > 1


def test_random_in_one_variety_override_makes_the_prompt_nondeterministic() -> None:
    spec = _spec("{{ variety }}")
    assert PromptRenderer(spec).deterministic
    spec = spec.model_copy(update={"prompt": spec.prompt.model_copy(update={
        "by_variety": {"ary_Arab": {"user": "{{ labels|random }} {{ text }}"}}})})
    assert not PromptRenderer(spec).deterministic


def test_without_few_shot_the_examples_loop_is_rendered_once_per_variety(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shipped task has ``few_shot: 0`` and a ``{% for ex in examples %}`` loop in its
    user message: ``examples`` is then ``[]`` for every item, so the message is the labels'
    list and the empty loop rendered once per variety, then filled in without Jinja."""
    task = load_suite("support-intents").tasks["intents"]
    assert task.spec.few_shot == 0 and "examples" in task.spec.prompt.user
    renderer = PromptRenderer(task.spec, list(task.items("train")))
    items = _items()
    rendered = _counting_jinja(monkeypatch)
    for item in items:
        assert renderer.render(item) == _rendered_whole(renderer, item)
    varieties = {item["variety"] for item in items}
    rendered.clear()
    for item in items:
        renderer.render(item)
    assert rendered == []  # every variety's constant parts are rendered by now
    assert len(varieties) > 1


def test_few_shot_examples_are_rendered_per_item() -> None:
    task = load_suite("support-intents").tasks["intents"]
    spec = task.spec.model_copy(update={"few_shot": 2})
    renderer = PromptRenderer(spec, list(task.items("train")), seed=5)
    shown = set()
    for item in _items():
        message = renderer.render(item)[-1]["content"]
        assert renderer.render(item) == _rendered_whole(renderer, item)
        assert message.count("Message: ") == 3  # two examples, then the item
        shown.add(message.rsplit("Message: ", 1)[0])
    assert len(shown) > 1  # each item's own examples


@pytest.mark.parametrize("user", [
    "{{ text|no_such_filter }}", "{% for l in labels %}{{ l|no_such_filter }}{% endfor %}",
    "{% set x = text|no_such_filter %}{{ x }}"])
def test_an_unknown_filter_is_reported_when_the_task_is_set_up(user: str) -> None:
    with pytest.raises(ConfigError, match=r"template error: .*no_such_filter"):
        PromptRenderer(_spec("", user))
