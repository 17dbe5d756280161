"""What makes a cached re-run fast without changing what it writes. Prompt keys: a
cached re-run finds its answers without rendering prompts, and whatever changes a prompt
(template, system prompt, few-shot examples, item text, seed) or the model (parameters,
tool-calling mode) misses the cache. Also: a split's items read without parsing the
others, and the garbage collector left as a run found it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import edit_items, write_model

from moroccan_eval.adapters import load_model
from moroccan_eval.mockserver import MockServer
from moroccan_eval.runs.requests import PromptKeys, build_request, task_setup
from moroccan_eval.runs.runner import RunOptions, RunResult, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.seal import write_checksums
from moroccan_eval.suites.table import ItemTable

TASK = Path("tasks") / "intents.yaml"
DATA = "data/intents.jsonl"


def predictions(result: RunResult) -> list[dict[str, Any]]:
    return [json.loads(line) for line in
            (result.path / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]


def edit_task(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / TASK
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(spec)
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    write_checksums(root)


class Runs:
    """Runs of the mini suite against one server and one cache, counting requests."""

    def __init__(self, tmp_path: Path, server: MockServer, suite: Path):
        self.tmp, self.server, self.suite = tmp_path, server, suite
        self.model = write_model(tmp_path / "m.yaml", server.base_url)

    def __call__(self, *, seed: int = 0, model: Path | None = None) -> tuple[RunResult, int]:
        before = self.server.requests
        options = RunOptions(suite=load_suite(self.suite), out_dir=self.tmp / "runs",
                             cache_dir=self.tmp / "cache", progress=False, seed=seed)
        [result] = run(options, [load_model(str(model or self.model))])
        assert result.status == "complete"
        return result, self.server.requests - before

    def prompt_keys(self) -> dict[str, str]:
        with sqlite3.connect(self.tmp / "cache" / "responses.sqlite") as db:
            return dict(db.execute("SELECT prompt, request FROM prompts"))


@pytest.fixture
def runs(tmp_path: Path, server: MockServer, mini_suite: Path) -> Runs:
    return Runs(tmp_path, server, mini_suite)


def test_a_rerun_is_answered_by_prompt_key_exactly_as_by_rendering(runs: Runs) -> None:
    first, sent = runs()
    assert sent == 12
    assert len(runs.prompt_keys()) == 12  # written with the answers
    second, sent = runs()
    assert sent == 0
    records = predictions(second)
    assert all(r["cached"] for r in records)
    # every record names the request rendering makes, though none was rendered
    suite = load_suite(runs.suite)
    task = suite.task("intents")
    _, renderer = task_setup(task, 0)
    rendered = {item["id"]: build_request(task, renderer, item, "native").hash()
                for item in task.items("test")}
    assert {r["id"]: r["request_hash"] for r in records} == rendered
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("cached", "attempts")}  # noqa: E731
                        for r in rs]
    assert sorted(strip(records), key=lambda r: r["id"]) == sorted(
        strip(predictions(first)), key=lambda r: r["id"])


def test_a_cache_without_prompt_keys_is_read_by_request_hash_and_gets_them(
        runs: Runs) -> None:
    """A cache an older toolkit filled has answers but no prompt keys."""
    runs()
    with sqlite3.connect(runs.tmp / "cache" / "responses.sqlite") as db:
        db.execute("DELETE FROM prompts")
    _, sent = runs()
    assert sent == 0
    assert len(runs.prompt_keys()) == 12
    _, sent = runs()
    assert sent == 0


@pytest.mark.parametrize("change", [
    pytest.param(lambda spec: spec["prompt"].update(user=spec["prompt"]["user"] + "\nLabel:"),
                 id="user-template"),
    pytest.param(lambda spec: spec["prompt"].update(system="Answer with one label."),
                 id="system-prompt"),
    pytest.param(lambda spec: spec["labels"]["other"].update(description="something else"),
                 id="label-description"),
    pytest.param(lambda spec: spec["prompt"].update(
        by_variety={"fra_Latn": {"user": "Message : {{ text }}"}}), id="variety-template"),
])
def test_a_changed_prompt_misses_the_cache(runs: Runs, change: Callable[[dict[str, Any]],
                                                                        None]) -> None:
    runs()
    edit_task(runs.suite, change)
    result, sent = runs()
    changed = {r["id"] for r in predictions(result) if not r["cached"]}
    assert sent == len(changed) > 0
    if "by_variety" in yaml.safe_load((runs.suite / TASK).read_text(encoding="utf-8"))["prompt"]:
        assert changed == {r["id"] for r in predictions(result) if r["variety"] == "fra_Latn"}
    else:
        assert sent == 12


def test_changed_few_shot_examples_miss_the_cache(runs: Runs) -> None:
    edit_task(runs.suite, lambda spec: spec.update(few_shot=3) or spec["prompt"].update(
        user="{% for ex in examples %}{{ ex.fields.text }} -> {{ ex.reference }}\n"
             "{% endfor %}{{ text }}"))
    runs()
    assert runs()[1] == 0
    # one train item's text: the prompts of its variety (which show all 3) change
    def retext(items: list[dict[str, Any]]) -> None:
        train = next(i for i in items if i["split"] == "train" and i["variety"] == "ary_Latn")
        train["fields"]["text"] += " (edited)"

    edit_items(runs.suite, DATA, retext)
    result, sent = runs()
    assert sent > 0
    assert {r["variety"] for r in predictions(result) if not r["cached"]} == {"ary_Latn"}
    # the seed picks the examples
    assert runs(seed=1)[1] > 0


def test_a_changed_item_misses_the_cache_alone(runs: Runs) -> None:
    runs()

    def retext(items: list[dict[str, Any]]) -> None:
        items[0]["fields"]["text"] += "!"

    edit_items(runs.suite, DATA, retext)
    result, sent = runs()
    assert sent == 1
    assert [r["id"] for r in predictions(result) if not r["cached"]] == ["t1-arb_Arab"]


def test_changed_model_settings_miss_the_cache(runs: Runs) -> None:
    runs()
    hot = write_model(runs.tmp / "hot.yaml", runs.server.base_url,
                      params={"temperature": 0.7})
    assert runs(model=hot)[1] == 12
    assert runs()[1] == 0  # the first model's answers are still there
    # a tool-calling mode has keys of its own; a task without tools sends the same
    # requests in either mode, so they are found by request hash once rendered
    json_tools = write_model(runs.tmp / "json.yaml", runs.server.base_url,
                             tool_calling="json")
    assert runs(model=json_tools)[1] == 0
    assert len(runs.prompt_keys()) == 24  # keys name prompts, not models: 12 per mode


def test_prompt_keys_cover_what_rendering_reads(mini_suite: Path) -> None:
    task = load_suite(mini_suite).task("intents")
    item = next(iter(task.items("test")))
    context, renderer = task_setup(task, 0)

    def key(**kwargs: Any) -> str | None:
        setup = {"task": task, "renderer": renderer, "train": context.train,
                 "tool_calling": "native", **kwargs}
        return PromptKeys(**setup).of(item)

    base = key()
    assert base is not None and key() == base
    assert key(tool_calling="json") != base
    assert key(renderer=task_setup(task, 1)[1]) != base  # the seed
    assert key(train=context.train[1:]) != base
    for field, value in (("fields", {"text": "other words"}), ("meta", {"kind": "x"}),
                         ("variety", "ary_Latn"), ("id", "t9-arb_Arab")):
        assert PromptKeys(task, renderer, context.train, "native").of(
            {**item, field: value}) != base  # type: ignore[misc]
    renderer.context = "sources"
    assert key() != base


def test_a_template_using_random_has_no_prompt_keys(runs: Runs) -> None:
    edit_task(runs.suite, lambda spec: spec["prompt"].update(
        user="{{ ['Label:', 'Answer:'] | random }} {{ text }}"))
    task = load_suite(runs.suite).task("intents")
    context, renderer = task_setup(task, 0)
    assert not renderer.deterministic
    assert PromptKeys(task, renderer, context.train, "native").of(
        next(iter(task.items("test")))) is None
    runs()
    assert runs.prompt_keys() == {}


def test_items_of_a_split_are_found_however_their_json_spells_it(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    rows = [
        '{"id": "a", "group": "a", "split": "test", "variety": "arb_Arab", '
        '"fields": {"text": "the train is late"}, "reference": "x", "consent_id": "c"}',
        '{"id": "b", "group": "b", "split": "tr\\u0061in", "variety": "arb_Arab", '
        '"fields": {"text": "b"}, "reference": "x", "consent_id": "c"}',
        '{"id": "c", "group": "c", "split": "train", "variety": "arb_Arab", '
        '"fields": {"text": "c"}, "reference": "x", "consent_id": "c"}',
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    table = ItemTable(path)
    assert [i["id"] for i in table.items("train") if i["split"] == "train"] == ["b", "c"]
    assert [i["id"] for i in table.items("test") if i["split"] == "test"] == ["a"]
    assert [i["id"] for i in table] == ["a", "b", "c"]


def test_a_run_restores_the_garbage_collector_as_it_found_it(runs: Runs) -> None:
    import gc

    gc.unfreeze()  # what other tests' CLI runs froze (their start-ups) and may yet free
    threshold = gc.get_threshold()
    runs()
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0
    gc.set_threshold(0)  # collections off: a run leaves them off
    try:
        runs()
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*threshold)


def test_scores_kept_during_a_run_are_those_of_its_predictions_file(runs: Runs) -> None:
    from moroccan_eval.runs.rundir import load_run
    from moroccan_eval.runs.scoring import RunTally, compute_scores

    for result in (runs()[0], runs()[0]):  # answered live, then from the cache
        run_dir = load_run(result.path)
        from_file = compute_scores(run_dir.manifest, run_dir.predictions(),
                                   run_dir.manifest.wall_s)
        assert from_file.to_json() == result.scores.to_json()

    # a value that does not read back as it is (a tuple, a NaN) is scored as read back
    manifest = run_dir.manifest.model_copy(deep=True)
    manifest.tasks["intents"].spec.breakdown_by = "meta.k"  # str() of a tuple: "('x', 1)"
    records: list[dict[str, Any]] = [
        {"id": "a", "group": "a", "task": "intents", "variety": "ary_Arab", "parsed": "x",
         "reference": "x", "latency_ms": 1.5, "meta": {"k": ("x", 1)}},
        {"id": "b", "group": "b", "task": "intents", "variety": "ary_Arab",
         "parsed": float("nan"), "reference": None, "meta": {"k": [1, {"n": 2.5}]}},
        {"id": "c", "group": "c", "task": "intents", "variety": "ary_Arab", "parsed": "x",
         "reference": "x", "fields": {"duration_s": 2.0}, "meta": {"k": ("y",)}},
    ]
    kept = RunTally(manifest)
    for record in records:
        kept.add(record, json.dumps(record, ensure_ascii=False))  # type: ignore[arg-type]
    read = [json.loads(json.dumps(record)) for record in records]
    scores = compute_scores(manifest, kept)
    assert scores.to_json() == compute_scores(manifest, read).to_json()
    breakdown = scores.tasks["intents"].breakdown
    assert breakdown is not None and "['x', 1]" in breakdown.values
