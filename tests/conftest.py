"""Shared fixtures. Every test runs with its own response cache and datasets cache, so no
test reads state another left behind, and nothing touches the user's home directory."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from moroccan_eval.mockserver import Behaviour, MockServer

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    hf = tmp_path_factory.getbasetemp() / "hf-datasets-cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(hf))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MOROCCAN_EVAL_CACHE_DIR",
                       str(tmp_path_factory.mktemp("response-cache")))
    monkeypatch.delenv("MOROCCAN_EVAL_SUITES", raising=False)


@pytest.fixture
def mini_suite(tmp_path: Path) -> Path:
    """A writable copy of the tiny fixture suite (3 labels, 3 varieties, 4+3 groups)."""
    target = tmp_path / "mini"
    shutil.copytree(FIXTURES / "suites" / "mini", target)
    return target


@pytest.fixture
def server() -> Iterator[MockServer]:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 (see moroccan_eval.mockserver)."""
    with MockServer(Behaviour()) as srv:
        yield srv


def edit_items(root: Path, data: str, change: Callable[[list[dict[str, Any]]], None]) -> None:
    """Change the items of a suite's data file in place and reseal the suite, as a data
    owner does after a deliberate edit (``suites checksum --write``)."""
    from moroccan_eval.suites.seal import write_checksums

    path = root / data
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    change(items)
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items),
                    encoding="utf-8")
    write_checksums(root)


def write_model(path: Path, base_url: str, **extra: object) -> Path:
    """Write an openai_compat model YAML pointing at ``base_url``."""
    import yaml

    spec = {
        "name": "mock-llm",
        "adapter": "openai_compat",
        "base_url": base_url,
        "model": "mock",
        "limits": {"concurrency": 4, "timeout_s": 5, "retries": 2, "backoff_base_s": 0.01},
        **extra,
    }
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path




# --------------------------------------------------------------------------- Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Chromium is not installed (CI installs it: see .ci/run)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield browser
        browser.close()


def open_page(browser: Any, path: Path, *, javascript: bool = True) -> tuple[Any, list[str]]:
    """Open a report in Chromium, collecting console errors, dialogs and any request but the
    file itself."""
    page = browser.new_page(java_script_enabled=javascript,
                            viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda r: r.url == path.as_uri() or problems.append(f"request {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


# --------------------------------------------------------------------------- task types


def bound_type(type_name: str, *, labels: tuple[str, ...] = (), metrics: tuple[str, ...] = (),
               **spec: Any) -> Any:
    """A registered task type bound to a minimal task spec."""
    from moroccan_eval import tasks
    from moroccan_eval.suites.schema import LabelSpec, PromptSpec, TaskSpec

    return tasks.for_spec(TaskSpec(
        name="t", type=type_name, description="test task", data="data/t.jsonl",
        input_fields=["text"], prompt=PromptSpec(user="{{ text }}"),
        labels={label: LabelSpec() for label in labels}, metrics=list(metrics), **spec))


def scored(type_name: str, records: list[dict[str, Any]], reference: str, *,
           n_boot: int = 1000, seed: int = 0, **spec: Any) -> dict[str, Any]:
    """Per-variety scores of ``records`` by a task type, as ``scores.json`` holds them."""
    from moroccan_eval.stats.bootstrap import Resampling

    task_type = bound_type(type_name, **spec)
    return {variety: entry.model_dump(mode="json") for variety, entry in task_type.score(
        records, reference, resampling=Resampling(n_boot, seed)).items()}


# --------------------------------------------------------------------------- runs


#: What a prediction record measures rather than computes: differs between equal runs.
VOLATILE = ("latency_ms", "cached", "attempts")


def computed_predictions(run_dir: Path) -> list[dict[str, Any]]:
    """A run's predictions without what was measured (latency, cache hits, attempts)."""
    lines = (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in VOLATILE} for line in lines]


def computed_scores(run_dir: Path) -> dict[str, Any]:
    """A run's scores.json without usage (latency, throughput, hosting: measured)."""
    tasks = json.loads((run_dir / "scores.json").read_text(encoding="utf-8"))["tasks"]
    return {name: {k: v for k, v in task.items() if k != "usage"} for name, task in tasks.items()}


def extra_variety_registry(path: Path) -> Path:
    """A user's variety file adding Hassaniya (mey_Arab), for MOROCCAN_EVAL_VARIETIES."""
    path.write_text(
        "varieties:\n  mey_Arab:\n    names: {en: Hassaniya, fr: Hassanya, ar: الحسانية}\n"
        "    language: mey\n    script: Arab\n    direction: rtl\n", encoding="utf-8")
    return path
