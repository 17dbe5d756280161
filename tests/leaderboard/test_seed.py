"""leaderboard/seed.py: the baselines' and real models' runs packaged as submissions that
validate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from moroccan_eval.mockserver import MockServer
from moroccan_eval.synthetic import make_suite

SEED = REPO / "leaderboard" / "seed.py"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A synthetic suite (one classification task: majority and char-ngram apply) installed
    through MOROCCAN_EVAL_SUITES, with a private cache."""
    make_suite(tmp_path / "suites" / "seedling", 9, ("arb_Arab", "ary_Latn", "fra_Latn"),
               name="seedling")
    return {**os.environ, "MOROCCAN_EVAL_SUITES": str(tmp_path / "suites"),
            "MOROCCAN_EVAL_CACHE_DIR": str(tmp_path / "cache"), "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1"}


def _run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_seed_packages_each_baseline_and_the_result_validates(
        env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "submissions"
    done = _run(str(SEED), "--suite", "seedling", "--out", str(out), "--date", "2026-12-03",
                env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["baseline-char-ngram", "baseline-majority"]
    for model in ("majority", "char-ngram"):
        folder = out / f"baseline-{model}"
        info = yaml.safe_load((folder / "submission.yaml").read_text(encoding="utf-8"))
        assert info["model"] == model and info["organisation"] == "moroccan-eval baselines"
        assert info["suites"] == ["seedling"] and info["adapter"] == model
        assert "offline baseline" in info["notes"].lower() and "never typed" in info["notes"]
        [run] = (folder / "runs").iterdir()  # a whole-test-set run of the real runner
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["selection"]["limit"] is None and manifest["status"] == "complete"

    # The leaderboard's own check rescores every number from the stored raw outputs.
    check = _run("-m", "moroccan_eval", "leaderboard", "validate", str(out), "--no-cache",
                 "--jobs", "1", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("VALID") == 2 and "INVALID" not in check.stdout

    # Again without --replace: refused before running anything, nothing touched.
    before = (out / "baseline-majority" / "SHA256SUMS").read_bytes()
    again = _run(str(SEED), "--suite", "seedling", "--out", str(out), env=env, cwd=tmp_path)
    assert again.returncode == 1 and "pass --replace" in again.stderr
    assert "Traceback" not in again.stderr
    assert (out / "baseline-majority" / "SHA256SUMS").read_bytes() == before

    # --replace rebuilds the seeds; a folder of someone else is never removed.
    foreign = out / "baseline-theirs"
    shutil.copytree(out / "baseline-majority", foreign)
    info = yaml.safe_load((foreign / "submission.yaml").read_text(encoding="utf-8"))
    (foreign / "submission.yaml").write_text(
        yaml.safe_dump({**info, "organisation": "Another Lab"}), encoding="utf-8")
    again = _run(str(SEED), "--suite", "seedling", "--out", str(out), "--replace",
                 env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "removed" in again.stdout and foreign.is_dir()
    assert sorted(p.name for p in out.iterdir()) == [
        "baseline-char-ngram", "baseline-majority", "baseline-theirs"]


def _stub_model(path: Path, base_url: str, **card: object) -> Path:
    path.write_text(yaml.safe_dump({
        "name": "Stub LM 1B@local", "adapter": "openai_compat", "base_url": base_url,
        "model": "stub", "api_key_env": None, "info": card}), encoding="utf-8")
    return path


def test_a_real_model_is_seeded_with_the_card_of_its_yaml_and_validates(
        env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "submissions"
    card = {"parameters_b": 1.0, "licence": "Apache-2.0", "weights": "open",
            "quantisation": "Q8_0", "vendor": "Test Lab", "notes": "answers anything",
            "link": "https://example.org/stub"}
    with MockServer() as server:  # a real OpenAI-compatible HTTP server on 127.0.0.1
        model = _stub_model(tmp_path / "stub.yaml", server.base_url, **card)
        done = _run(str(SEED), "--suite", "seedling", "--model", str(model), "--out", str(out),
                    "--date", "2026-12-04", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        asked = server.requests
        assert asked > 0
        folder = out / "seed-stub-lm-1b-local"
        assert sorted(p.name for p in out.iterdir()) == [
            "baseline-char-ngram", "baseline-majority", folder.name]
        info = yaml.safe_load((folder / "submission.yaml").read_text(encoding="utf-8"))
        assert info["model"] == "Stub LM 1B@local"
        assert info["organisation"] == "moroccan-eval seed runs"
        assert {key: info[key] for key in ("parameters_b", "licence", "weights",
                                           "quantisation", "link")} == {
            key: card[key] for key in ("parameters_b", "licence", "weights", "quantisation",
                                       "link")}
        assert info["adapter"] == "openai_compat" and info["hosting"] == "on-prem"
        assert info["suites"] == ["seedling"] and info["date"] == "2026-12-04"
        assert info["notes"].startswith("Test Lab. answers anything. Run by leaderboard/seed.py")
        [run] = (folder / "runs").iterdir()
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["selection"]["limit"] is None and manifest["status"] == "complete"
        assert manifest["model"]["spec"]["name"] == "Stub LM 1B@local"

        check = _run("-m", "moroccan_eval", "leaderboard", "validate", str(out), "--no-cache",
                     "--jobs", "1", env=env, cwd=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.count("VALID") == 3 and "INVALID" not in check.stdout

        # Only the model's row is rebuilt: the baselines' rows stay as they were.
        baseline = (out / "baseline-majority" / "SHA256SUMS").read_bytes()
        again = _run(str(SEED), "--suite", "seedling", "--model", str(model), "--no-baselines",
                     "--out", str(out), "--replace", "--date", "2026-12-05", env=env,
                     cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert f"removed {folder}" in again.stdout and "baseline-" not in again.stdout.split(
            "->")[0]
        assert server.requests > asked
    assert (out / "baseline-majority" / "SHA256SUMS").read_bytes() == baseline
    info = yaml.safe_load((folder / "submission.yaml").read_text(encoding="utf-8"))
    assert info["date"] == "2026-12-05"


def test_a_real_model_without_its_licence_is_refused_before_any_run(
        env: dict[str, str], tmp_path: Path) -> None:
    with MockServer() as server:
        model = _stub_model(tmp_path / "stub.yaml", server.base_url, weights="open")
        done = _run(str(SEED), "--suite", "seedling", "--model", str(model), "--no-baselines",
                    "--out", str(tmp_path / "s"), env=env, cwd=tmp_path)
        assert server.requests == 0
    assert done.returncode == 1 and done.stderr.startswith("error: ")
    assert "info: block" in done.stderr and "licence: Field required" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists()
    # a real model needs the suites named: it may take minutes per suite
    done = _run(str(SEED), "--model", str(model), env=env, cwd=tmp_path)
    assert done.returncode == 2 and "--model needs --suite" in done.stderr


def test_a_suite_no_baseline_applies_to_is_one_clear_error(tmp_path: Path,
                                                           env: dict[str, str]) -> None:
    done = _run(str(SEED), "--suite", "no-such-suite", "--out", str(tmp_path / "s"),
                env=env, cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("error: ")
    assert "no-such-suite" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists()


def test_the_shipped_seed_submissions_validate_against_the_shipped_suites() -> None:
    # a suite whose data or version changed leaves its seeds stale: re-run leaderboard/seed.py
    from moroccan_eval.leaderboard.validate import submission_dirs, validate_all

    roots = submission_dirs([REPO / "leaderboard" / "submissions"])
    assert roots, "leaderboard/submissions holds no seed: run python leaderboard/seed.py"
    stale = [f"{report.ident}: {check.name}: {check.detail}"
             for report in validate_all(roots) for check in report.checks if not check.ok]
    assert not stale, ("seed submissions no longer validate; run python leaderboard/seed.py "
                       "--replace:\n" + "\n".join(stale))
