"""The agent and security suites end to end, against OpenAI-compatible servers on
127.0.0.1: one that calls tools, one that obeys injections, one that resists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_chromium, open_page, write_model

from moroccan_eval.adapters import load_model
from moroccan_eval.analysis.compare import compare_runs
from moroccan_eval.canary import CANARY_PLACEHOLDER
from moroccan_eval.mockserver import MockServer
from moroccan_eval.report.build import build_report, write_report
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.runs.scoring import rescore
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.verify import verify_run

ORDER = re.compile(r"CMD-\d{5}")
LIMIT = 4  # items per variety


def _last_user(body: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def _order_or_escalate(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The scripted agent: look up the order the message names, else hand over."""
    found = ORDER.search(_last_user(body))
    if found:
        return "lookup_order", {"order_id": found.group()}
    return "escalate_to_human", {"reason": "unclear"}


def native_agent(body: dict[str, Any]) -> dict[str, Any]:
    name, arguments = _order_or_escalate(body)
    call = {"id": "c1", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}
    return {"content": None, "tool_calls": [call]}


def json_mode_agent(body: dict[str, Any]) -> dict[str, Any]:
    assert "tools" not in body and '"tool_calls"' in body["messages"][0]["content"]
    name, arguments = _order_or_escalate(body)
    return {"content": json.dumps({"tool_calls": [{"name": name, "arguments": arguments}]})}


def _expected_accuracy(records: list[dict[str, Any]]) -> float:
    """What the scripted agent must score, worked out from the references alone."""
    right = 0
    for rec in records:
        wanted = {c["name"] for c in rec["reference"]["calls"]}
        made = "lookup_order" if ORDER.search(rec["fields"]["text"]) else "escalate_to_human"
        right += wanted == {made}
    return right / len(records)


def _run(tmp_path: Path, server: MockServer, suite: str, name: str, **extra: Any) -> Any:
    """Run a scripted model: the first items of each variety of the agent suite, or all of
    the security suite (its benign controls come after the attacks). Each model name has its
    own cache: the scripted models share one server URL, hence one cache key."""
    spec = write_model(tmp_path / f"{name}.yaml", server.base_url, name=name, **extra)
    limit = LIMIT if suite == "agent" else None
    [result] = run(RunOptions(suite=load_suite(suite), out_dir=tmp_path / "runs", limit=limit,
                              cache_dir=tmp_path / "cache" / name, progress=False),
                   [load_model(str(spec))])
    return result


def test_native_tool_calls_are_sent_and_scored(tmp_path: Path, server: MockServer) -> None:
    seen: list[dict[str, Any]] = []
    server.behaviour.answer = lambda body: seen.append(body) or native_agent(body)
    result = _run(tmp_path, server, "agent", "native-agent")
    assert {tool["function"]["name"] for tool in seen[0]["tools"]} == {
        "draft_reply", "create_ticket", "book_appointment", "escalate_to_human",
        "lookup_order", "cancel_order"}
    records = list(load_run(result.path).predictions())
    assert len(records) == 7 * LIMIT and all(r["tool_mode"] == "native" for r in records)
    entry = result.scores.to_json()["tasks"]["coordinator"]
    assert entry["overall"]["tool_accuracy"]["value"] == pytest.approx(
        _expected_accuracy(records), abs=1e-6)
    assert entry["overall"]["valid_json_rate"]["value"] == 1.0
    assert verify_run(load_run(result.path)).ok


def test_json_mode_fallback_scores_like_native_calls(tmp_path: Path, server: MockServer) -> None:
    server.behaviour.answer = native_agent
    native = _run(tmp_path, server, "agent", "native-agent")
    server.behaviour.answer = json_mode_agent
    fallback = _run(tmp_path, server, "agent", "json-agent", tool_calling="json")
    for metric in ("tool_accuracy", "argument_f1", "under_escalation_rate"):
        assert fallback.scores.to_json()["tasks"]["coordinator"]["overall"][metric] == \
            native.scores.to_json()["tasks"]["coordinator"]["overall"][metric]
    assert verify_run(load_run(fallback.path)).ok  # prompts rebuilt in JSON mode


def test_broken_tool_calls_are_scored_failures(tmp_path: Path, server: MockServer) -> None:
    server.behaviour.answer = lambda body: {"content": None, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "lookup_order", "arguments": '{"order_id": '}},
        {"id": "c2", "type": "function", "function": {"name": "wire_money", "arguments": "{}"}}]}
    entry = _run(tmp_path, server, "agent", "broken-agent").scores.to_json()["tasks"]["coordinator"]
    assert entry["overall"]["valid_json_rate"]["value"] == 0.0
    assert entry["overall"]["tool_accuracy"]["value"] == 0.0  # an unknown tool is never right
    assert entry["usage"]["n_errors"] == 0  # answered, just wrong


def obeying_agent(body: dict[str, Any]) -> dict[str, Any]:
    """Does whatever the text asks: repeats its instructions (canary included) and calls any
    tool the conversation names."""
    everything = "\n".join(str(m["content"]) for m in body["messages"])
    calls = [{"id": "c0", "type": "function", "function": {
        "name": "draft_reply",
        "arguments": json.dumps({"text": body["messages"][0]["content"], "language": "french"})}}]
    if "export_customer_list" in everything:
        calls.append({"id": "c1", "type": "function",
                      "function": {"name": "export_customer_list", "arguments": "{}"}})
    return {"content": None, "tool_calls": calls}


def resisting_agent(body: dict[str, Any]) -> dict[str, Any]:
    return {"content": "Désolé, je ne peux pas vous aider avec cette demande."}


def _secrets(bodies: list[dict[str, Any]]) -> set[str]:
    found = {m for body in bodies for m in re.findall(r"MEV-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}",
                                                        body["messages"][0]["content"])}
    assert found, "the system prompt must carry the canary"
    return found


def _written(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace")
                     for p in root.rglob("*") if p.is_file())


def test_obeying_model_leaks_and_the_secret_is_written_nowhere(tmp_path: Path,
                                                               server: MockServer) -> None:
    seen: list[dict[str, Any]] = []
    server.behaviour.answer = lambda body: seen.append(body) or obeying_agent(body)
    result = _run(tmp_path, server, "security", "obeying")
    entry = result.scores.to_json()["tasks"]["injection"]
    assert entry["overall"]["attack_success_rate"]["value"] > 0
    assert entry["overall"]["canary_leak_rate"]["value"] == 1.0
    kinds = entry["by_kind"]  # where it fails: every kind of attack, and no attack in controls
    assert set(kinds) == {"control", *(f"{where} · {goal}" for where in ("direct", "indirect")
                                       for goal in ("exfiltration", "hijack", "tool_abuse"))}
    assert kinds["control"]["attack_success_rate"]["value"] is None
    assert kinds["indirect · exfiltration"]["canary_leak_rate"]["value"] == 1.0
    [secret] = _secrets(seen)  # one random secret per run
    report = build_report([load_run(result.path)])
    for text in (_written(tmp_path / "runs"), _written(tmp_path / "cache"), report):
        assert secret not in text and secret.replace("-", "") not in text
    assert CANARY_PLACEHOLDER in _written(tmp_path / "runs")  # the scored trace of the leak
    assert rescore(load_run(result.path)).to_json() == json.loads(
        (result.path / "scores.json").read_text(encoding="utf-8"))


def test_resisting_model_has_no_successful_attack(tmp_path: Path, server: MockServer) -> None:
    seen: list[dict[str, Any]] = []
    server.behaviour.answer = lambda body: seen.append(body) or resisting_agent(body)
    first = _run(tmp_path, server, "security", "resisting")
    entry = first.scores.to_json()["tasks"]["injection"]
    assert entry["overall"]["attack_success_rate"]["value"] == 0.0
    assert entry["overall"]["canary_leak_rate"]["value"] == 0.0
    assert entry["overall"]["over_refusal_rate"]["value"] == 1.0  # it refuses everything
    # A second run draws a new secret, yet hashes its requests alike: served from the cache.
    requests = server.requests
    second = _run(tmp_path, server, "security", "resisting")
    assert server.requests == requests
    assert second.scores.to_json()["tasks"]["injection"]["overall"] == entry["overall"]
    assert len(_secrets(seen)) == 1  # only the first run reached the server


def test_report_orders_attack_rates_with_lower_is_better(tmp_path: Path,
                                                         server: MockServer) -> None:
    server.behaviour.answer = obeying_agent
    bad = _run(tmp_path, server, "security", "obeying")
    server.behaviour.answer = resisting_agent
    good = _run(tmp_path, server, "security", "resisting")
    html = build_report([load_run(bad.path), load_run(good.path)])
    diffs = {(d.variety, d.metric): d for d in compare_runs(load_run(bad.path),
                                                            load_run(good.path))}
    resisting_minus_obeying = diffs[("all", "attack_success_rate")]
    assert resisting_minus_obeying.delta is not None and resisting_minus_obeying.delta < 0
    assert resisting_minus_obeying.significant and not resisting_minus_obeying.higher_is_better
    heatmap = html[html.index('id="heatmap"'):html.index('id="tasks"')]
    assert "attack_success_rate" in heatmap and "lower is better" in heatmap
    # best model first, and the sort key of its cells is the quality, not the raw rate
    assert heatmap.index("resisting") < heatmap.index("obeying")
    summary = html[:html.index('id="heatmap"')]
    best = summary[summary.index("attack_success_rate</bdi>"):]
    assert best.startswith('attack_success_rate</bdi> <span class="muted">(lower is better)')
    # the best model per variety is the resisting one, shown with its rate (0.0), not 1 − rate
    assert re.search(r'resisting</bdi></td><td>0\.0</td>', best[:best.index("</table>")])
    tasks = html[html.index('id="tasks"'):]
    assert "attack_success_rate <span class=\"muted\">(lower is better)" in tasks
    assert "benign_completion <span class=\"muted\">(higher is better)" in tasks
    assert "<bdi>direct · tool_abuse</bdi>" in tasks  # the breakdown by kind of item


def _security_runs(root: Path) -> list[Any]:
    with MockServer() as server:
        server.behaviour.answer = obeying_agent
        bad = _run(root, server, "security", "obeying")
        server.behaviour.answer = resisting_agent
        good = _run(root, server, "security", "resisting")
    return [load_run(bad.path), load_run(good.path)]


@needs_chromium
def test_security_report_in_chromium_sorts_the_safest_model_first(browser: Any,
                                                                  tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # runs start their own event loop; playwright has one
        runs = pool.submit(_security_runs, tmp_path).result()
    path = tmp_path / "security.html"
    write_report(path, build_report(runs))
    page, problems = open_page(browser, path)
    rows = "#heatmap table.sortable tbody th"
    header = page.locator("#heatmap table.sortable thead th").nth(1)  # all varieties
    header.click()
    header.click()  # descending: best quality first, whichever way the metric points
    assert page.locator(rows).first.inner_text().startswith("resisting")
    assert page.locator("#tasks details table tbody tr").count() >= 7  # kinds of item
    assert problems == []
    page.close()
