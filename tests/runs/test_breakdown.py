"""``breakdown_by: meta.KEY`` in a task file: the item's meta reaches the prompt, records
carry the value, and ``scores.json`` and the report hold the task's scores per value (with
intervals), computed the same way on rescoring; tasks without it write nothing new."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from conftest import edit_items, write_model

from moroccan_eval.cli import main
from moroccan_eval.mockserver import MockServer
from moroccan_eval.prompts import PromptRenderer
from moroccan_eval.suites.loader import load_suite

REGION = {"t1": "north", "t4": "north", "t2": "south", "t3": "south",
          "r1": "north", "r2": "south", "r3": "south"}


def answer(messages: list[dict[str, Any]]) -> str:
    """The label the test server gives: it depends on the region the system prompt names,
    so the per-region scores differ only if the item's meta reached the prompt."""
    return "refund" if "(north)" in messages[0]["content"] else "delivery_status"


def with_breakdown(suite: Path, by: str = "meta.region") -> None:
    task_file = suite / "tasks" / "intents.yaml"
    task = yaml.safe_load(task_file.read_text(encoding="utf-8"))
    task["breakdown_by"] = by
    task["prompt"]["system"] = "Classify the message ({{ meta.region }}). Answer with the label."
    task_file.write_text(yaml.safe_dump(task, allow_unicode=True), encoding="utf-8")

    def regions(items: list[dict[str, Any]]) -> None:
        for item in items:
            item["meta"] = {"region": REGION[item["group"]], "source": "fixture"}

    edit_items(suite, "data/intents.jsonl", regions)


def run(suite: Path, model: str, out: Path) -> tuple[Path, str]:
    """The run directory and what ``run`` printed."""
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--model", model,
                                       "--out", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    [run_dir] = [m.parent for m in out.glob("*/manifest.json")]
    return run_dir, result.output


def test_scores_per_meta_value_with_intervals(tmp_path: Path, mini_suite: Path,
                                              server: MockServer) -> None:
    with_breakdown(mini_suite)
    server.behaviour.reply = answer
    run_dir, printed = run(mini_suite, str(write_model(tmp_path / "m.yaml", server.base_url)),
                           tmp_path / "runs")

    records = [json.loads(line) for line in
               (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["meta"]["region"] for r in records} == {"north", "south"}
    assert all(set(r["meta"]) == {"region"} for r in records)  # only the key scored by

    scores = json.loads((run_dir / "scores.json").read_text(encoding="utf-8"))
    breakdown = scores["tasks"]["intents"]["breakdown"]
    assert breakdown["by"] == "meta.region"
    for region, entry in breakdown["values"].items():
        mine = [r for r in records if r["meta"]["region"] == region]
        expected = sum(r["reference"] == ("refund" if region == "north"
                                          else "delivery_status") for r in mine) / len(mine)
        assert entry["n"] == len(mine) == 6  # 2 groups x 3 varieties
        assert entry["accuracy"]["value"] == round(expected, 6)
        low, high = entry["accuracy"]["ci"]
        assert low <= expected <= high
    assert breakdown["values"]["north"]["accuracy"]["value"] == 1.0  # all refund, answered so
    assert breakdown["values"]["south"]["accuracy"]["value"] == 0.5
    assert "by meta.region, all varieties pooled:" in printed
    assert re.search(r"north +100\.0 \[ *100\.0, +100\.0\]  n=6", printed), printed

    before = (run_dir / "scores.json").read_text(encoding="utf-8")
    result = CliRunner().invoke(main, ["rescore", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "scores.json").read_text(encoding="utf-8")) == json.loads(before)

    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(run_dir), "-o", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text(encoding="utf-8")
    assert "Scores by meta.region, all varieties pooled" in html
    assert "<bdi>north</bdi> <span class=\"n\">n=6</span>" in html
    assert "<bdi>south</bdi> <span class=\"n\">n=6</span>" in html


def test_tasks_without_breakdown_write_none(tmp_path: Path, mini_suite: Path) -> None:
    run_dir, printed = run(mini_suite, "majority", tmp_path / "runs")
    assert "all varieties pooled" not in printed
    task = json.loads((run_dir / "scores.json").read_text(encoding="utf-8"))["tasks"]["intents"]
    assert "breakdown" not in task
    records = (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert not any("meta" in json.loads(line) for line in records)


def test_items_without_the_value_and_bad_keys_are_refused(mini_suite: Path) -> None:
    with_breakdown(mini_suite)

    def drop(items: list[dict[str, Any]]) -> None:
        items[4]["meta"] = {"source": "fixture"}

    edit_items(mini_suite, "data/intents.jsonl", drop)
    result = CliRunner().invoke(main, ["suites", "validate", str(mini_suite)])
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "t2-ary_Latn" in result.output
    assert "meta.region must be a non-empty string" in result.output

    with_breakdown(mini_suite, by="region")  # not meta.KEY
    result = CliRunner().invoke(main, ["suites", "validate", str(mini_suite)])
    assert result.exit_code != 0, result.output
    assert "breakdown_by: Value error, write meta.KEY" in result.output, result.output


def test_to_amazigh_prompts_name_each_items_dialect() -> None:
    """The shipped task scores per dialect, and every prompt names the dialect its
    reference is written in."""
    task = load_suite("translation").tasks["to_amazigh"]
    assert task.spec.breakdown_by == "meta.amazigh_variety"
    renderer = PromptRenderer(task.spec)
    names = {"tachelhit": "Tachelhit", "central_atlas": "Central Atlas Tamazight",
             "tarifit": "Tarifit"}
    seen = set()
    for item in task.items("test"):
        dialect = item["meta"]["amazigh_variety"]
        system = renderer.render(item)[0]["content"]
        assert names[dialect] in system
        assert not any(other in system for key, other in names.items() if key != dialect)
        seen.add(dialect)
    assert seen == set(names)
