"""The typed records read and write the 0.1.0 file layout, and refuse what is not one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from moroccan_eval.cli import main
from moroccan_eval.records import Manifest, RunScores, Signature, VarietyScore

LEGACY = Path(__file__).parent / "fixtures" / "legacy_runs"


@pytest.mark.parametrize("run_dir", sorted(LEGACY.iterdir()), ids=lambda p: p.name[17:])
def test_scores_and_manifests_round_trip(run_dir: Path) -> None:
    scores = json.loads((run_dir / "scores.json").read_text(encoding="utf-8"))
    assert RunScores.model_validate(scores).to_json() == scores
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    for task in manifest["tasks"].values():  # deprecated: read, no longer written
        task["spec"].pop("parser", None)
    assert Manifest.model_validate(manifest).to_json() == manifest


def test_a_signature_is_a_class_that_reads_back_its_string() -> None:
    run_dir = sorted(LEGACY.iterdir())[0]
    manifest = Manifest.model_validate_json((run_dir / "manifest.json").read_text())
    scores = RunScores.model_validate_json((run_dir / "scores.json").read_text())
    for task, entry in scores.tasks.items():
        signature = Signature.of(manifest, task)
        assert str(signature) == entry.signature
        assert Signature.parse(entry.signature) == signature
    perturbed = signature.model_copy(update={"perturb": "typos"})
    assert "|perturb:typos|" in str(perturbed)
    assert Signature.parse(str(perturbed)) == perturbed
    drawn = signature.model_copy(update={"bootstrap_draws": "indices"})
    assert str(drawn).endswith("|boot:1000+indices") and str(signature).endswith("|boot:1000")
    assert Signature.parse(str(drawn)) == drawn
    with pytest.raises(ValueError, match="not a moroccan-eval signature"):
        Signature.parse("BLEU|nrefs:1")


def test_a_variety_keeps_metrics_deltas_and_details_apart() -> None:
    entry = VarietyScore.model_validate({
        "n": 40, "errors": 1, "unparsed": 2,
        "field_f1": {"value": 0.5, "ci": [0.4, 0.6]},
        "delta_vs_reference": {"field_f1": {"value": -0.1, "ci": [-0.2, 0.0],
                                            "n_pairs": 40, "significant": False}},
        "field_accuracy": {"date": 0.75}})
    assert entry.metrics["field_f1"].ci == (0.4, 0.6)
    assert entry.deltas["field_f1"].n_pairs == 40
    assert entry.details == {"field_accuracy": {"date": 0.75}}


@pytest.mark.parametrize("command", ["report", "verify", "export"])
def test_a_forged_manifest_is_one_clear_error(tmp_path: Path, command: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text('{"status": "complete"}')
    (run_dir / "scores.json").write_text("{}")
    (run_dir / "predictions.jsonl").write_text("")
    args = [command, str(run_dir), *([] if command == "verify" else ["-o", str(tmp_path / "o")])]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "manifest.json: not a moroccan-eval manifest.json" in result.output
    assert "run_id: Field required" in result.output
    assert not (tmp_path / "o").exists()
