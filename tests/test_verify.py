"""Verifying submissions: offline checks, and re-querying a live endpoint over HTTP."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import pytest
import yaml
from conftest import write_model

from moroccan_eval.adapters import load_model
from moroccan_eval.errors import ConfigError
from moroccan_eval.mockserver import MockServer
from moroccan_eval.runs.rundir import PREDICTIONS, SCORES, load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.verify import parse_sample, verify_run


def _run(suite: Path, out: Path, model: str) -> Path:
    [result] = run(RunOptions(suite=load_suite(suite), out_dir=out, progress=False),
                   [load_model(model)])
    return result.path


def _checks(path: Path, **kwargs: object) -> dict[str, tuple[bool, str]]:
    result = verify_run(load_run(path), **kwargs)  # type: ignore[arg-type]
    return {c.name: (c.ok, c.detail) for c in result.checks}


def _edit_lines(path: Path, edit: object) -> None:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [edit(r) for r in lines]  # type: ignore[operator]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines if r),
                    encoding="utf-8")


def test_an_honest_run_verifies(tmp_path: Path, mini_suite: Path) -> None:
    path = _run(mini_suite, tmp_path, "char-ngram")
    checks = _checks(path, suite_ref=str(mini_suite))
    assert checks.keys() == {"scores", "usage", "signatures", "suite", "items", "prompts"}
    assert all(ok for ok, _ in checks.values()), checks


def test_a_run_is_rescored_with_the_draws_it_names(tmp_path: Path, mini_suite: Path) -> None:
    """A new run names its bootstrap draws in its manifest and signatures; claiming the
    other draws (the scheme of runs that name none) changes every interval, so verify
    rescores with the draws named and a manifest edited to others fails."""
    path = _run(mini_suite, tmp_path, "char-ngram")
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["bootstrap_draws"] == "indices2"
    scores = json.loads((path / SCORES).read_text(encoding="utf-8"))
    assert scores["tasks"]["intents"]["signature"].endswith("|seed:0|boot:1000+indices2")
    manifest["bootstrap_draws"] = "multinomial"
    (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    checks = _checks(path, suite_ref=str(mini_suite))
    assert not checks["scores"][0] and "/ci[0]: claimed" in checks["scores"][1]
    assert not checks["signatures"][0]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("latency_ms", "fast", "latency_ms: Input should be a valid number"),
    ("group", None, "group: Field required"),
    ("input_tokens", 1.5, "input_tokens: Input should be a valid integer"),
])
def test_a_record_of_the_wrong_shape_is_one_clear_error(
        tmp_path: Path, mini_suite: Path, field: str, value: object, reason: str) -> None:
    """A prediction record with a field missing or of the wrong type stops verify and
    rescore with the file, line and field, before anything is rewritten."""
    from click.testing import CliRunner

    from moroccan_eval.cli import main

    path = _run(mini_suite, tmp_path, "char-ngram")
    lines = (path / PREDICTIONS).read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[2])
    if value is None:
        del record[field]
    else:
        record[field] = value
    lines[2] = json.dumps(record, ensure_ascii=False)
    (path / PREDICTIONS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    scores_before = (path / SCORES).read_bytes()
    for command in (["verify", str(path), "--suite", str(mini_suite)], ["rescore", str(path)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert (f"error: {path / PREDICTIONS}:3: not a prediction record as moroccan-eval "
                f"writes it: {reason}") in result.stderr, result.stderr
    assert (path / SCORES).read_bytes() == scores_before


def test_a_huge_doctored_value_is_reported_cut_short(tmp_path: Path, mini_suite: Path) -> None:
    """A doctored value of any length fails, and the report quotes only its start."""
    path = _run(mini_suite, tmp_path, "majority")
    scores = json.loads((path / SCORES).read_text(encoding="utf-8"))
    scores["model"] = "x" * 100_000
    (path / SCORES).write_text(json.dumps(scores), encoding="utf-8")
    ok, detail = _checks(path, suite_ref=str(mini_suite))["scores"]
    assert not ok and detail.startswith("model: claimed 'xxx") and detail.endswith("…")
    assert len(detail) <= 300


def test_inflated_scores_are_caught(tmp_path: Path, mini_suite: Path) -> None:
    path = _run(mini_suite, tmp_path, "majority")
    scores = json.loads((path / SCORES).read_text(encoding="utf-8"))
    scores["tasks"]["intents"]["overall"]["accuracy"]["value"] = 0.99
    scores["tasks"]["intents"]["signature"] = "moroccan-eval:0.1.0|suite:other"
    (path / SCORES).write_text(json.dumps(scores), encoding="utf-8")
    checks = _checks(path, suite_ref=str(mini_suite))
    ok, detail = checks["scores"]
    assert not ok and "intents/overall/accuracy/value: claimed 0.99, recomputed" in detail
    assert not checks["signatures"][0]


def test_edited_references_and_dropped_items_are_caught(tmp_path: Path,
                                                        mini_suite: Path) -> None:
    path = _run(mini_suite, tmp_path, "char-ngram")
    dropped: list[str] = []

    def tamper(record: dict[str, object]) -> dict[str, object] | None:
        if record["variety"] == "ary_Latn" and not dropped:
            dropped.append(str(record["id"]))
            return None  # a hard item quietly left out
        if record["variety"] == "fra_Latn":
            record["reference"] = record["parsed"]  # the answer key bent to the outputs
        return record

    _edit_lines(path / PREDICTIONS, tamper)
    checks = _checks(path, suite_ref=str(mini_suite))
    ok, detail = checks["items"]
    assert not ok and "reference differs from the suite's" in detail
    assert f"have no prediction, e.g. {dropped[0]}" in detail


def test_a_changed_prompt_or_suite_is_caught(tmp_path: Path, mini_suite: Path) -> None:
    path = _run(mini_suite, tmp_path, "char-ngram")
    _edit_lines(path / PREDICTIONS, lambda r: {**r, "request_hash": "0" * 64}
                if r["variety"] == "arb_Arab" else r)
    ok, detail = _checks(path, suite_ref=str(mini_suite))["prompts"]
    assert not ok and "is not the suite's prompt" in detail

    changed = tmp_path / "changed"
    shutil.copytree(mini_suite, changed)
    task = changed / "tasks" / "intents.yaml"
    task.write_text(task.read_text(encoding="utf-8").replace("Answer", "Reply"),
                    encoding="utf-8")
    from moroccan_eval.suites.seal import compute_checksums

    spec = yaml.safe_load((changed / "suite.yaml").read_text(encoding="utf-8"))
    spec["checksums"] = compute_checksums(changed)
    (changed / "suite.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    checks = _checks(path, suite_ref=str(changed))
    assert not checks["suite"][0] and "content hash" in checks["suite"][1]
    assert "tasks/intents.yaml differs" in checks["suite"][1]
    assert not checks["items"][0]


def test_live_endpoint_agreement_over_http(tmp_path: Path, mini_suite: Path,
                                           server: MockServer) -> None:
    spec = write_model(tmp_path / "vendor.yaml", server.base_url)
    path = _run(mini_suite, tmp_path / "runs", str(spec))
    before = server.requests
    checks = _checks(path, suite_ref=str(mini_suite), endpoint=load_model(str(spec)),
                     sample=0.5)
    assert checks["endpoint"][0] and "agree (100.0%" in checks["endpoint"][1]
    n_items = sum(1 for _ in load_run(path).predictions())
    assert server.requests - before == 2 * -(-n_items // 2)  # ceil(50%), asked twice

    server.behaviour.reply = lambda messages: "other"  # the vendor swapped the model
    result = verify_run(load_run(path), suite_ref=str(mini_suite),
                        endpoint=load_model(str(spec)), sample=10, min_agreement=0.9)
    assert not result.ok and result.agreement is not None
    assert result.agreement["sampled"] == 10 and result.agreement["rate"] < 0.9


def test_a_noisy_endpoint_is_judged_against_its_own_agreement(
        tmp_path: Path, mini_suite: Path, server: MockServer) -> None:
    """A server that varies between calls (llama.cpp batching does) fails an honest run
    against a fixed 90% bar, and passes against its own self-agreement; a doctored run
    fails against it."""
    import random

    from moroccan_eval.mockserver import first_label_reply

    noise = random.Random(7)
    server.behaviour.reply = lambda messages: (
        first_label_reply(messages) if noise.random() < 0.8 else "other")
    spec = write_model(tmp_path / "vendor.yaml", server.base_url, limits={"concurrency": 1})
    path = _run(mini_suite, tmp_path / "runs", str(spec))
    endpoint = load_model(str(spec))

    def endpoint_check(**options: object) -> tuple[bool, str]:
        result = verify_run(load_run(path), suite_ref=str(mini_suite), endpoint=endpoint,
                            sample=12, **options)  # type: ignore[arg-type]
        assert result.agreement is not None and result.agreement["self_rate"] is not None
        return next((c.ok, c.detail) for c in result.checks if c.name == "endpoint")

    ok, detail = endpoint_check(min_agreement=0.9)
    assert not ok and "required 90%" in detail
    ok, detail = endpoint_check()
    assert ok, detail
    assert "agrees with itself on" in detail and "would be detected" in detail

    _edit_lines(path / PREDICTIONS, lambda r: {**r, "output": "delivery_status"})  # doctored
    ok, detail = endpoint_check()
    assert not ok and "significantly less" in detail


def test_sample_parsing() -> None:
    assert parse_sample("5%") == pytest.approx(0.05)
    assert parse_sample("0.2") == pytest.approx(0.2)
    assert parse_sample("20") == 20
    assert parse_sample("1.0") == pytest.approx(1.0)  # a share: every answer
    for bad in ("5x", "0%", "-3", "150%", "2.5", "0"):
        with pytest.raises(ConfigError, match="--sample"):
            parse_sample(bad)


def test_a_limited_run_records_its_sample_and_verifies(tmp_path: Path,
                                                       mini_suite: Path) -> None:
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path, limit=2,
                              seed=3, progress=False), [load_model("char-ngram")])
    manifest = load_run(result.path).manifest
    assert manifest.selection.sampling == "stratified" and manifest.seed == 3
    assert sum(1 for _ in load_run(result.path).predictions()) == 6  # 2 groups x 3 varieties
    assert all(c.ok for c in verify_run(load_run(result.path), suite_ref=str(mini_suite)).checks)


def _verify_peak(tmp_path: Path, groups: int) -> int:
    """Peak memory Python allocated (tracemalloc) while verifying a run of ``groups`` x 2
    items (its suite loaded and a first verification done before: imports, caches)."""
    from moroccan_eval.synthetic import make_suite

    suite = load_suite(make_suite(tmp_path / f"suite-{groups}", groups))
    model = tmp_path / "instant.yaml"
    model.write_text("name: toy\nadapter: python\ncallable: toy_models:instant\n",
                     encoding="utf-8")
    [result] = run(RunOptions(suite=suite, out_dir=tmp_path / f"runs-{groups}", progress=False),
                   [load_model(str(model))])
    verify_run(load_run(result.path), suite_ref=suite)
    tracemalloc.start()
    try:
        checks = verify_run(load_run(result.path), suite_ref=suite).checks
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(check.ok for check in checks), checks
    return peak


def test_verify_streams_the_run_in_flat_memory(tmp_path: Path) -> None:
    small, large = _verify_peak(tmp_path, 250), _verify_peak(tmp_path, 2500)
    # holding the records and the expected items took 1.9 kB an item (4,500 more: +8.7 MB);
    # what scoring keeps in memory before it spills to disk about 0.2 kB (+0.9 MB)
    assert large - small < 2_500_000, (small, large)
