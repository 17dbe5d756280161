"""The README's two set-up commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO


def _commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", readme)[:2]


def test_readme_starts_with_the_two_commands() -> None:
    demo, tests = _commands()
    assert "pip install ." in demo and "moroccan-eval demo" in demo
    assert "'.[test,hf,ray]'" in tests and "pytest" in tests and "mypy" in tests and "ruff" in tests


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in ci
    assert _commands()[1] in ci.splitlines()


def test_python_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.split("\n")
    assert "'value':" in lines[0] and lines[1] in {"char-ngram True", "none True"}


def test_task_type_example_works(tmp_path: Path) -> None:
    """The README's one-file task type parses answers in several varieties, scores them
    through the bootstrap engine and checks references."""
    from moroccan_eval.suites.schema import PromptSpec, TaskSpec

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("**Writing a task type**", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {"__name__": "readme_yes_no"}
    exec(compile(code, "README.md", "exec"), namespace)
    spec = TaskSpec(name="q", type="yes_no", description="q", data="data/q.jsonl",
                    input_fields=["text"], prompt=PromptSpec(user="{{ text }}"))
    task = namespace["YesNo"](spec)  # type: ignore[operator]
    parser = task.parser()
    assert [parser.parse(t) for t in ("Oui, bien sûr", "la", "نعم", "maybe")] == \
        [True, False, True, None]
    records = [{"group": f"g{i}", "variety": "fra_Latn", "reference": True,
                "parsed": parser.parse(answer), **parser.judge(parser.parse(answer), True)}
               for i, answer in enumerate(["oui", "non", "oui", "oui"])]
    [entry] = task.score(records, "fra_Latn").values()
    assert entry.metrics["accuracy"].value == 0.75 and entry.metrics["accuracy"].ci is not None
    assert task.check_item({"reference": "yes"}, tmp_path) == [
        "reference must be true or false, not 'yes'"]
