"""The ``test_noisy`` split: loaded beside ``test``, run with ``--split test_noisy``, and
reported as a noisy row beside the clean row, paired by group with the clean items."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import edit_items

from moroccan_eval.analysis.compare import compare_runs, noisy_rows, pair_noisy_runs
from moroccan_eval.cli import main
from moroccan_eval.errors import RunError, SuiteError
from moroccan_eval.report.build import build_report
from moroccan_eval.runs.rundir import Run, load_run
from moroccan_eval.suites.loader import load_suite

#: Noisy re-typings of the mini suite's ary_Latn test items (elongation, typos, emoji,
#: Arabic-script code-switching), one per group.
NOISY = {
    "t1": "bghiiiit flousi trj3o 3afaak 🙏",
    "t2": "fin wsl lcolis dyalii??",
    "t3": "wach kt9lbo 3la khdama 😅",
    "t4": "imta ghadi yrj3o lflous dyali ولا لا",
}


def add_noisy(items: list[dict[str, Any]]) -> None:
    for group, text in NOISY.items():
        items.append({"id": f"{group}-ary_Latn-noisy", "group": group, "split": "test_noisy",
                      "variety": "ary_Latn", "fields": {"text": text},
                      "reference": next(i["reference"] for i in items
                                        if i["group"] == group and i["variety"] == "ary_Latn"),
                      "consent_id": "authored", "meta": {"noise": ["authored"]}})


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"traceback for {args}: {result.exception!r}")
    return result.exit_code, result.output


def test_loader_keeps_noisy_items_apart_from_test(mini_suite: Path) -> None:
    edit_items(mini_suite, "data/intents.jsonl", add_noisy)
    task = load_suite(mini_suite).task("intents")
    noisy = list(task.items("test_noisy"))
    assert [i["id"] for i in noisy] == [f"{g}-ary_Latn-noisy" for g in NOISY]
    assert task.varieties("test_noisy") == ["ary_Latn"]
    assert len(list(task.items("test"))) == 12  # the clean split is unchanged


def test_noisy_item_needs_its_clean_item(mini_suite: Path) -> None:
    def orphan(items: list[dict[str, Any]]) -> None:
        add_noisy(items)
        items[-1] = {**items[-1], "id": "t9-ary_Latn-noisy", "group": "t9"}
        first = next(i for i in items if i["id"] == "t1-ary_Latn-noisy")
        items.append({**first, "id": "t1-ary_Latn-noisy-2"})  # a second t1 re-typing

    edit_items(mini_suite, "data/intents.jsonl", orphan)
    with pytest.raises(SuiteError) as caught:
        load_suite(mini_suite)
    problems = "\n".join(caught.value.problems)
    assert "'t9-ary_Latn-noisy' (split test_noisy): no test item of group 't9'" in problems
    assert "group 't1' already has a ary_Latn test_noisy item" in problems


def _runs(out: Path) -> dict[str, Run]:
    runs = [load_run(m.parent) for m in out.glob("*/manifest.json")]
    return {r.manifest.selection.split: r for r in runs}


def _accuracy(run: Run, groups: set[str]) -> float:
    records = [r for r in run.predictions() if r["variety"] == "ary_Latn" and r["group"] in groups]
    return sum(bool(r.get("correct")) for r in records) / len(records)


def test_noisy_run_is_a_paired_degradation_row(tmp_path: Path, mini_suite: Path) -> None:
    edit_items(mini_suite, "data/intents.jsonl", add_noisy)
    out = tmp_path / "runs"
    for split in ("test", "test_noisy"):
        code, text = invoke("run", "--suite", str(mini_suite), "--model", "char-ngram",
                            "--split", split, "--out", str(out), "--no-cache")
        assert code == 0, text
    runs = _runs(out)
    clean, noisy = runs["test"], runs["test_noisy"]
    assert {r["id"] for r in noisy.predictions()} == {f"{g}-ary_Latn-noisy" for g in NOISY}

    kept, pairs = pair_noisy_runs([noisy, clean])
    assert kept == [clean] and pairs == [(clean, noisy)]
    [row] = noisy_rows(pairs)
    cell = row.cells["ary_Latn"]
    # paired by group: the clean side is the clean run's score on exactly the noisy groups
    assert cell.n_pairs == len(NOISY)
    assert cell.a == pytest.approx(_accuracy(clean, set(NOISY)))
    assert cell.b == pytest.approx(_accuracy(noisy, set(NOISY)))
    assert cell.delta == pytest.approx(cell.b - cell.a)
    assert cell.b_ci is not None and cell.b_ci[0] <= cell.b <= cell.b_ci[1]
    assert set(row.cells) == {"ary_Latn", "all"}  # only the varieties that have noisy items

    html = build_report([clean, noisy])
    noisy_html = re.findall(r'<tr class="noisy" data-split="test_noisy">(.*?)</tr>', html, re.S)
    assert len(noisy_html) == 1  # one noisy row, under the clean char-ngram row
    assert "test_noisy: as users type" in noisy_html[0]
    assert f"Δ {100 * cell.delta:+.1f}" in noisy_html[0] and f"n={len(NOISY)}" in noisy_html[0]
    # the noisy run is not a second char-ngram model in the tables and recommendation
    heatmap = html.split('id="heatmap"')[1].split("</section>")[0]
    assert heatmap.count('<bdi class="model">char-ngram</bdi>') == 2
    assert 'class="noisy"' not in build_report([clean])

    code, text = invoke("compare", str(clean.path), str(noisy.path))
    assert code == 0 and "paired by group" in text
    assert re.search(rf"ary_Latn\s+n={len(NOISY)}\s", text)


def test_noisy_run_without_its_clean_run_stands_alone(tmp_path: Path, mini_suite: Path) -> None:
    edit_items(mini_suite, "data/intents.jsonl", add_noisy)
    out = tmp_path / "runs"
    for split in ("train", "test_noisy"):
        code, text = invoke("run", "--suite", str(mini_suite), "--model", "majority",
                            "--split", split, "--out", str(out), "--no-cache")
        assert code == 0, text
    runs = _runs(out)
    assert pair_noisy_runs(list(runs.values())) == (list(runs.values()), [])
    with pytest.raises(RunError, match="cannot pair a train run with a test_noisy run"):
        compare_runs(runs["train"], runs["test_noisy"])
    code, text = invoke("compare", str(runs["train"].path), str(runs["test_noisy"].path))
    assert code != 0 and "cannot pair a train run with a test_noisy run" in text
    assert json.loads((runs["test_noisy"].path / "manifest.json").read_text("utf-8"))[
        "selection"]["split"] == "test_noisy"
