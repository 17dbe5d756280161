"""A task type from outside the package, installed the way pip installs a plugin (a
distribution on the path whose entry_points.txt names it under
``moroccan_eval.task_types``), runs end to end: load, run, score, report, verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from moroccan_eval import tasks
from moroccan_eval.cli import main
from moroccan_eval.suites.seal import write_checksums

PLUGINS = Path(__file__).parent.parent / "plugins"
VARIETIES = {"arb_Arab": ("هل وصلت الطلبية؟", "الطلبية وصلت"),
             "fra_Latn": ("Est-ce que la commande est arrivée ?", "La commande est arrivée"),
             "ary_Latn": ("wach lcommande wslat?", "lcommande wslat")}


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site folder holding the plugin's distribution metadata, on ``sys.path``."""
    site = tmp_path / "site"
    dist = site / "yes_no_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: yes-no-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[moroccan_eval.task_types]\nyes_no = yes_no_type:YesNo\n")
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.syspath_prepend(str(site))
    tasks.clear_cache()
    yield site
    tasks.clear_cache()


def _suite(root: Path) -> Path:
    """A suite with one yes_no task: a question (yes) and a statement (no) per group."""
    suite = root / "questions"
    (suite / "tasks").mkdir(parents=True)
    (suite / "data").mkdir()
    items = []
    for split, groups in (("test", range(6)), ("train", range(6, 8))):
        for g in groups:
            for variety, (question, statement) in VARIETIES.items():
                text, answer = (question, True) if g % 2 == 0 else (statement, False)
                items.append({"id": f"g{g}-{variety}", "group": f"g{g}", "split": split,
                              "variety": variety, "fields": {"text": text},
                              "reference": answer, "consent_id": "authored", "meta": {}})
    (suite / "data" / "questions.jsonl").write_text(
        "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    (suite / "tasks" / "questions.yaml").write_text(yaml.safe_dump({
        "name": "questions", "type": "yes_no", "description": "Is the message a question?",
        "data": "data/questions.jsonl", "input_fields": ["text"],
        "prompt": {"user": "Is this a question? Answer yes or no.\n{{ text }}"}},
        allow_unicode=True), encoding="utf-8")
    (suite / "CARD.md").write_text(
        "---\nsources: Written by the moroccan-eval developers for a plugin test.\n"
        "authors: moroccan-eval contributors\n"
        "consent: {basis: authored, details: Authored test data; no personal data.}\n"
        "anonymization: Nothing to anonymize (authored).\nretention: Kept with the tests.\n"
        "validation_status: authored test fixture; not reviewed\n---\n# questions\n",
        encoding="utf-8")
    (suite / "suite.yaml").write_text(yaml.safe_dump({
        "name": "questions", "version": "0.1.0", "description": "yes/no plugin test",
        "license": "CC-BY-4.0", "reference_variety": "arb_Arab", "tasks": ["questions"],
        "checksums": {}}), encoding="utf-8")
    write_checksums(suite)
    return suite


def test_a_plugin_task_type_runs_end_to_end(plugin_path: Path, tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    model = tmp_path / "agreeable.yaml"
    model.write_text("name: agreeable\nadapter: python\ncallable: yes_no_type:agreeable\n")
    runner = CliRunner()

    listed = runner.invoke(main, ["tasks", "list"])
    assert listed.exit_code == 0 and "yes_no" in listed.output
    assert "yes_rate (lower is better)" in listed.output

    validated = runner.invoke(main, ["suites", "validate", str(suite)])
    assert validated.exit_code == 0, validated.output

    ran = runner.invoke(main, ["run", "--suite", str(suite), "--model", str(model),
                               "--out", str(tmp_path / "runs"), "--no-cache"])
    assert ran.exit_code == 0, ran.output
    assert "agreeable · questions · accuracy" in ran.output
    [run_dir] = (tmp_path / "runs").iterdir()
    scores = json.loads((run_dir / "scores.json").read_text(encoding="utf-8"))
    entry = scores["tasks"]["questions"]
    assert entry["type"] == "yes_no" and entry["metrics"] == ["accuracy"]
    assert entry["overall"]["accuracy"]["value"] == 1.0  # it does tell questions apart
    assert entry["overall"]["n"] == 18 and entry["varieties"]["fra_Latn"]["n"] == 6

    report = tmp_path / "report.html"
    reported = runner.invoke(main, ["report", str(run_dir), "-o", str(report)])
    assert reported.exit_code == 0, reported.output
    html = report.read_text(encoding="utf-8")
    assert "Answers: yes / no / none" in html and "agreeable</bdi>: 9 / 9 / 0" in html

    verified = runner.invoke(main, ["verify", str(run_dir), "--suite", str(suite)])
    assert verified.exit_code == 0, verified.output
    assert "VERIFIED" in verified.output


def test_the_plugin_is_found_by_a_fresh_process(plugin_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), str(PLUGINS)])}
    listed = subprocess.run([sys.executable, "-m", "moroccan_eval", "tasks", "list"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "yes_no" in listed.stdout and "classification" in listed.stdout


def test_a_broken_plugin_is_one_clear_error(plugin_path: Path, tmp_path: Path) -> None:
    entry_points = plugin_path / "yes_no_plugin-0.1.dist-info" / "entry_points.txt"
    entry_points.write_text("[moroccan_eval.task_types]\nyes_no = yes_no_type:Missing\n")
    tasks.clear_cache()
    result = CliRunner().invoke(main, ["suites", "validate", str(_suite(tmp_path))])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "task type 'yes_no' (yes_no_type:Missing) cannot be imported" in result.output


def test_an_unknown_task_type_is_named(tmp_path: Path) -> None:
    suite = _suite(tmp_path)  # the plugin is not installed in this test
    result = CliRunner().invoke(main, ["suites", "validate", str(suite)])
    assert result.exit_code == 2
    assert "unknown task type 'yes_no'" in result.output and "classification" in result.output


def test_a_plugin_cannot_take_a_built_in_types_name(plugin_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Built-in types are read from the toolkit's own distribution, without scanning every
    installed one (about 10 ms of each start-up); a plugin naming one is not used."""
    entry_points = plugin_path / "yes_no_plugin-0.1.dist-info" / "entry_points.txt"
    entry_points.write_text("[moroccan_eval.task_types]\nyes_no = yes_no_type:YesNo\n"
                            "classification = yes_no_type:YesNo\n")
    scans: list[str] = []
    real_scan = tasks.entry_points

    def counted(**selection: str) -> Any:
        scans.append(selection["group"])
        return real_scan(**selection)

    monkeypatch.setattr(tasks, "entry_points", counted)
    tasks.clear_cache()
    assert tasks.get("classification").__module__ == "moroccan_eval.tasks.classification"
    assert scans == []
    assert tasks.get("yes_no").__name__ == "YesNo"  # a plugin's own name: found by the scan
    assert scans == [tasks.ENTRY_POINT_GROUP]
    assert "classification" in tasks.names() and "yes_no" in tasks.names()
