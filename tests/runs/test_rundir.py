from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from moroccan_eval.adapters import load_model
from moroccan_eval.errors import RunError
from moroccan_eval.export import export
from moroccan_eval.records import PredictionRecord
from moroccan_eval.runs.rundir import RecordsByItem, load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.runs.scoring import rescore
from moroccan_eval.suites.loader import load_suite


@pytest.fixture
def run_dir(tmp_path: Path, mini_suite: Path) -> Path:
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              progress=False), [load_model("char-ngram")])
    return result.path


def test_manifest_has_provenance_and_no_secrets(run_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = load_run(run_dir).manifest
    assert manifest.suite.ident.startswith("mini@0.1.0+sha.")
    assert manifest.tasks["intents"].spec.labels["refund"].aliases == ["remboursement"]
    assert manifest.model.spec.name == "char-ngram"
    assert {"toolkit_version", "seed", "host", "created", "finished"} <= set(manifest.to_json())


def test_export_scores_and_predictions(run_dir: Path, tmp_path: Path) -> None:
    runs = [load_run(run_dir)]
    assert export(runs, "scores", "csv", tmp_path / "s.csv") == 8  # (3 varieties + all) × 2
    frame = pd.read_csv(tmp_path / "s.csv")
    assert set(frame["metric"]) == {"accuracy", "macro_f1"}
    assert frame["signature"].str.startswith("moroccan-eval:").all()
    assert export(runs, "predictions", "parquet", tmp_path / "p.parquet") == 12
    assert set(pd.read_parquet(tmp_path / "p.parquet")["variety"]) == {
        "arb_Arab", "ary_Latn", "fra_Latn"}
    export(runs, "scores", "json", tmp_path / "s.json")
    assert len(json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))) == 8


def test_rescore_recomputes_from_raw_outputs(run_dir: Path) -> None:
    before = load_run(run_dir)
    preds = (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    # simulate stored answers that an older parser failed on
    records = [json.loads(line) for line in preds]
    for record in records:
        record["output"] = f"Intent: {record['output']}."
        record["parsed"] = None
        record["correct"] = False
    (run_dir / "predictions.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    after = rescore(load_run(run_dir))
    assert after.tasks["intents"].varieties == before.scores.tasks["intents"].varieties
    rewritten = load_run(run_dir)
    assert [r["parsed"] for r in rewritten.predictions()] == [
        r["parsed"] for r in before.predictions()]  # the new judgements are stored
    assert rewritten.scores == after


@pytest.mark.parametrize("kept", [0, 5])
def test_rescore_refuses_a_truncated_predictions_file(run_dir: Path, kept: int) -> None:
    """Records lost from predictions.jsonl would rescore to fewer items: rescore refuses
    and rewrites nothing."""
    path = run_dir / "predictions.jsonl"
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:kept]),
                    encoding="utf-8")
    before = {name: (run_dir / name).read_bytes() for name in ("predictions.jsonl",
                                                                "scores.json")}
    files = sorted(run_dir.iterdir())
    with pytest.raises(RunError, match=f"intents: predictions.jsonl holds {kept} of the 12 "
                                       "items scores.json counts"):
        rescore(load_run(run_dir))
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    assert sorted(run_dir.iterdir()) == files  # the new file written beside it is gone


def test_unfinished_runs_are_refused(run_dir: Path, tmp_path: Path) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["status"] = "running"
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(RunError, match="status is 'running'"):
        load_run(run_dir)
    with pytest.raises(RunError, match="not a run directory"):
        load_run(tmp_path)


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os
    import stat

    from moroccan_eval.io import _default_mode, write_atomic

    write_atomic(tmp_path / "report.html", "<p>x</p>")
    mode = stat.S_IMODE((tmp_path / "report.html").stat().st_mode)
    assert mode == _default_mode() and mode & stat.S_IROTH  # readable, unlike mkstemp's 0600
    current = os.umask(0)
    os.umask(current)
    assert _default_mode() == 0o666 & ~current


def _records(*ids: str) -> list[PredictionRecord]:
    return [{"task": "intents", "id": item_id, "line": line}  # type: ignore[typeddict-item]
            for line, item_id in enumerate(ids)]


def test_records_are_taken_by_item_in_another_order_than_the_file_s() -> None:
    read: list[str] = []
    records = RecordsByItem(iter(_records("b", "a", "c", "a", "x", "b2", "b2")),
                            on_read=lambda record: read.append(record["id"]))
    first_a = records.take(("intents", "a"))
    assert first_a is not None and first_a["line"] == 1  # type: ignore[typeddict-item]
    assert read == ["b", "a"], "read only as far as the item asked for"
    assert [records.take(("intents", k)) is not None for k in ("b", "c")] == [True, True]
    assert read == ["b", "a", "c"], "b waited; c was next"
    assert records.take(("intents", "d")) is None, "not in the file: read to its end"
    assert read == ["b", "a", "c", "a", "x", "b2", "b2"]
    assert records.take(("intents", "x")) is not None
    # a taken already, read again; b2 read twice before it was asked for
    assert records.left() == {("intents", "a"), ("intents", "b2")}
    assert records.repeated == {("intents", "b2")}
