"""The structure the design promises: no import cycle (lazy and type-checking imports
included), no branch on a task type's name outside its own module, privacy independent of
the suite loader, and every built-in task type registered through the entry point."""

from __future__ import annotations

import ast
from pathlib import Path

from moroccan_eval import tasks

PACKAGE = Path(__file__).parent.parent / "moroccan_eval"
BUILT_IN = {"classification", "translation", "qa", "extraction", "asr", "tool_call",
            "injection"}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.with_suffix("").relative_to(PACKAGE.parent).parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(name: str, path: Path, is_package: bool, known: set[str]) -> set[str]:
    """Every module of the package that ``name`` imports, anywhere in its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: None if is_package else -1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                module = f"{target}.{alias.name}"
                found.add(module if module in known else target)
    return {m for m in found if m in known and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, is_package, set(modules))
            for name, (path, is_package) in modules.items()}


def test_no_import_cycle_lazy_imports_included() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_check_sees_a_lazy_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_privacy_uses_only_the_suite_leaves() -> None:
    graph = _graph()
    used = {m for name, deps in graph.items() if name.startswith("moroccan_eval.privacy")
            for m in deps if m.startswith("moroccan_eval.suites")}
    assert used <= {"moroccan_eval.suites.schema", "moroccan_eval.suites.seal"}


def test_no_branch_on_a_task_type_name_outside_its_module() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "tasks":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                names = {c.value for c in ast.walk(node) if isinstance(c, ast.Constant)}
                if names & BUILT_IN:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_built_in_types_are_registered_like_plugins() -> None:
    assert set(tasks.names()) >= BUILT_IN
    for name in BUILT_IN:
        task_type = tasks.get(name)
        assert task_type.name == name and task_type.__module__.startswith("moroccan_eval.tasks.")


def test_the_run_path_imports_no_heavy_library_before_its_first_request() -> None:
    """Start-up is seconds if these load on every run (issue 16): Presidio and spaCy only
    when a suite's privacy verdict is not remembered, numpy once scores are computed,
    ``datasets`` and pandas only to import or export files."""
    import subprocess
    import sys

    heavy = ("numpy", "datasets", "pandas", "presidio_analyzer", "spacy", "torch",
             "transformers", "pyarrow")
    code = ("import sys, moroccan_eval.cli.run, moroccan_eval.runs.runner, "
            "moroccan_eval.adapters.http; print(' '.join(m for m in " + repr(heavy)
            + " if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == []


def test_the_offline_commands_import_no_http_client() -> None:
    """``verify`` and the leaderboard rebuild requests but send none (``verify --endpoint``
    builds its adapter, which imports the client then): aiohttp's import and its
    certificates' thread are not theirs to pay, in every process of a board's build."""
    import subprocess
    import sys

    code = ("import sys, moroccan_eval.cli.leaderboard, moroccan_eval.cli.results, "
            "moroccan_eval.verify, moroccan_eval.leaderboard.validate, "
            "moroccan_eval.leaderboard.site; print('aiohttp' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "False"
