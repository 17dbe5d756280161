"""The command line, through click's runner and real subprocesses."""

from __future__ import annotations

import gc
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import REPO, write_model

from moroccan_eval.cli import main
from moroccan_eval.mockserver import MockServer


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"traceback for {args}: {result.exception!r}")
    return result.exit_code, result.output


def complete_runs(out: Path) -> list[Path]:
    return [m.parent for m in out.glob("*/manifest.json")
            if json.loads(m.read_text(encoding="utf-8"))["status"] == "complete"]


def test_run_prints_scores_with_signature(tmp_path: Path, mini_suite: Path) -> None:
    code, out = invoke("run", "--suite", str(mini_suite), "--model", "char-ngram",
                       "--out", str(tmp_path / "runs"))
    assert code == 0, out
    assert "char-ngram · intents · accuracy" in out
    assert "signature: moroccan-eval:0.1.0|suite:mini@0.1.0+sha." in out
    assert len(complete_runs(tmp_path / "runs")) == 1
    assert gc.isenabled()  # paused for the start-up only


def test_run_flags_unparsed_answers_and_the_trivial_baseline(tmp_path: Path,
                                                            mini_suite: Path,
                                                            server: MockServer) -> None:
    server.behaviour.reply = lambda _: "refund or exchange, maybe other"  # three labels
    model = write_model(tmp_path / "m.yaml", server.base_url)
    code, out = invoke("run", "--suite", str(mini_suite), "--model", str(model),
                       "--out", str(tmp_path / "runs"), "--no-cache")
    assert code == 0, out
    assert "(4 unparsed)" in out and "unparsed 12;" in out  # 4 per variety, none parsed
    assert "no better than the trivial baseline" in out
    code, out = invoke("run", "--suite", str(mini_suite), "--model", "char-ngram",
                       "--out", str(tmp_path / "runs"))
    assert code == 0 and "trivial baseline" not in out, out


def _bad_inputs(tmp: Path, suite: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "malformed.yaml").write_text("name: x\nadapter: [unclosed\n")
    (tmp / "unknown-field.yaml").write_text("name: x\nadapter: majority\ntemprature: 0\n")
    (tmp / "unknown-adapter.yaml").write_text("name: x\nadapter: olama\n")
    write_model(tmp / "needs-key.yaml", "http://127.0.0.1:9/v1",
                api_key_env="MOROCCAN_EVAL_TEST_MISSING_KEY")
    tampered = tmp / "tampered"
    import shutil

    shutil.copytree(suite, tampered)
    data = tampered / "data" / "intents.jsonl"
    data.write_text(data.read_text(encoding="utf-8").replace("bonjour", "salut"),
                    encoding="utf-8")
    (tmp / "a-file").write_text("not a folder")
    run = ["run", "--suite", str(suite), "--out", str(tmp / "runs")]
    return {
        "malformed YAML": ([*run, "--model", str(tmp / "malformed.yaml")], "invalid YAML"),
        "unknown field": ([*run, "--model", str(tmp / "unknown-field.yaml")],
                          "temprature: unknown field"),
        "unknown adapter": ([*run, "--model", str(tmp / "unknown-adapter.yaml")],
                            "unknown adapter 'olama'"),
        "missing key": ([*run, "--model", str(tmp / "needs-key.yaml")],
                        "environment variable MOROCCAN_EVAL_TEST_MISSING_KEY is not set"),
        "tampered data": (["run", "--suite", str(tampered), "--model", "majority", "--out",
                           str(tmp / "runs")], "sha256 mismatch"),
        "unknown variety": ([*run, "--model", "majority", "--variety", "ary_Latin"],
                            "(did you mean 'ary_Latn'?)"),
        "missing variety": ([*run, "--model", "majority", "--variety", "zgh_Tfng"],
                            "has no test items in variety zgh_Tfng"),
        "unknown task": ([*run, "--model", "majority", "--task", "intent"],
                         "(did you mean 'intents'?)"),
        "unknown suite": (["run", "--suite", "support-intent", "--model", "majority"],
                          "(did you mean 'support-intents'?)"),
        "unwritable out": (["run", "--suite", str(suite), "--model", "majority", "--out",
                            str(tmp / "a-file" / "runs")],
                           f"{tmp / 'a-file'} is a file, not a folder; choose another --out"),
        "missing model file": ([*run, "--model", str(tmp / "nope.yaml")], "no model file"),
        "empty split": ([*run, "--model", "majority", "--split", "dev"],
                        "no dev items in intents; the split(s) there: test, train"),
        "negative seed": ([*run, "--model", "majority", "--seed", "-1"],
                          "--seed: -1 is not a seed (0 or more)"),
    }


CASES = ["malformed YAML", "unknown field", "unknown adapter", "missing key", "tampered data",
         "unknown variety", "missing variety", "unknown task", "unknown suite",
         "unwritable out", "missing model file", "empty split", "negative seed"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_clear_error(case: str, tmp_path: Path, mini_suite: Path) -> None:
    args, expected = _bad_inputs(tmp_path, mini_suite)[case]
    code, out = invoke(*args)
    assert code != 0
    assert expected in out
    assert "Traceback" not in out
    assert out.startswith("error: ")
    assert gc.isenabled()  # a start-up that fails resumes collections too
    assert complete_runs(tmp_path / "runs") == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_every_problem_of_a_runs_options_at_once(tmp_path: Path, mini_suite: Path) -> None:
    """mkdocs-style: a run with several wrong options names each of them in one message,
    rather than one per attempt."""
    args, _ = _bad_inputs(tmp_path, mini_suite)["malformed YAML"]
    code, out = invoke(*args, "--model", "majorty", "--variety", "ary_Latin",
                       "--task", "intent", "--model", "majority")
    assert code == 2, out  # every problem is a configuration's: ConfigError's exit code
    assert out.startswith("error: the run cannot start (4 problem(s)):")
    for expected in ("invalid YAML", "no model file 'majorty'", "unknown variety 'ary_Latin'",
                     "(did you mean 'intents'?)"):
        assert out.count(expected) == 1, (expected, out)
    assert not (tmp_path / "runs").exists()

    code, out = invoke("run", "--suite", "support-intent", "--model", "majorty",
                       "--out", str(tmp_path / "runs"))
    assert code == 2 and "(2 problem(s))" in out and "(did you mean 'support-intents'?)" in out

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "suite.yaml").write_text("name: broken\nversion: one\n", encoding="utf-8")
    code, out = invoke("run", "--suite", str(broken), "--model", "majorty",
                       "--out", str(tmp_path / "runs"))
    assert code == 2 and "\n    - version: String should match pattern" in out, out  # nested

    code, out = invoke("run", "--suite", str(mini_suite), "--model", "majority",
                       "--variety", "ary_Latin", "--out", str(tmp_path / "runs"))
    assert out.startswith("error: unknown variety 'ary_Latin'")  # one problem: as it was


def test_every_missing_run_directory_at_once(tmp_path: Path) -> None:
    (tmp_path / "not-a-run").mkdir()
    for command in (["report", "-o", str(tmp_path / "r.html")], ["verify"], ["rescore"],
                    ["export", "-o", str(tmp_path / "x.csv")], ["recommend"]):
        code, out = invoke(command[0], str(tmp_path / "nope-1"), str(tmp_path / "nope-2"),
                           *command[1:])
        assert code == 1, (command, out)
        assert "(2 problem(s))" in out, (command, out)
        assert f"{tmp_path / 'nope-1'}: no such run directory" in out
        assert f"{tmp_path / 'nope-2'}: no such run directory" in out
    code, out = invoke("merge", str(tmp_path / "nope-1"), str(tmp_path / "not-a-run"),
                       "--out", str(tmp_path / "merged"))
    assert code == 1 and "(2 problem(s))" in out and "not a run directory" in out, out
    code, out = invoke("compare", str(tmp_path / "nope-1"), str(tmp_path / "not-a-run"))
    assert code == 1 and "(2 problem(s))" in out and "not a run directory" in out, out
    assert not any((tmp_path / name).exists() for name in ("r.html", "x.csv", "merged"))


def test_bad_input_in_a_subprocess(tmp_path: Path, mini_suite: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: x\nadapter: majority\nparams: [1, 2]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "moroccan_eval", "run", "--suite", str(mini_suite), "--model",
         str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "params: Input should be a valid dictionary" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "runs").exists()


def test_read_only_out_dir(tmp_path: Path, mini_suite: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.access(locked, os.W_OK):
        pytest.skip("this user can write to read-only folders (root without a user to drop to)")
    code, out = invoke("run", "--suite", str(mini_suite), "--model", "majority", "--out",
                       str(locked / "runs"))
    assert code != 0 and "is not writable" in out


def test_report_export_rescore_commands(tmp_path: Path, mini_suite: Path) -> None:
    runs = tmp_path / "runs"
    assert invoke("run", "--suite", str(mini_suite), "--model", "majority", "--model",
                  "char-ngram", "--out", str(runs))[0] == 0
    code, out = invoke("report", str(runs), "-o", str(tmp_path / "r.html"))
    assert code == 0 and (tmp_path / "r.html").is_file()
    code, out = invoke("export", str(runs), "--what", "predictions", "--format", "jsonl",
                       "-o", str(tmp_path / "p.jsonl"))
    assert code == 0 and "24 rows" in out
    code, out = invoke("rescore", *map(str, sorted(runs.iterdir())))
    assert code == 0 and out.count("signature: ") == 2
    code, out = invoke("report", str(tmp_path / "nothing-here"), "-o", str(tmp_path / "x.html"))
    assert code != 0 and "no such run directory" in out


def test_suites_commands(tmp_path: Path, mini_suite: Path) -> None:
    code, out = invoke("suites", "list")
    assert code == 0 and "support-intents" in out
    code, out = invoke("suites", "show", str(mini_suite), "--json")
    assert code == 0 and json.loads(out)["tasks"]["intents"]["items"]["test/arb_Arab"] == 4
    assert invoke("suites", "validate", str(mini_suite))[0] == 0
    data = mini_suite / "data" / "intents.jsonl"
    data.write_text(data.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    code, out = invoke("suites", "validate", str(mini_suite))
    assert code == 2 and "sha256 mismatch" in out
    code, out = invoke("suites", "checksum", str(mini_suite), "--write")
    assert code == 0 and invoke("suites", "validate", str(mini_suite))[0] == 0


def test_models_check(tmp_path: Path, server: MockServer) -> None:
    code, out = invoke("models", "check", str(write_model(tmp_path / "m.yaml", server.base_url)))
    assert code == 0 and "ok: mock-llm answered" in out and server.requests == 1
    server.behaviour.failures = [500] * 5
    code, out = invoke("models", "check", str(tmp_path / "m.yaml"))
    assert code == 1 and "did not answer: HTTP 500" in out
    code, out = invoke("models", "list")
    assert code == 0 and "ollama-qwen" in out and "INVALID" not in out


@pytest.mark.parametrize("reply", [
    "Reply with the single word: ok<|im_end|>\n<|im_start|>user",  # what a base model gave
    "Sure! Here is a word for you: banana",
])
def test_models_check_fails_a_model_that_does_not_follow_the_instruction(
        tmp_path: Path, server: MockServer, reply: str) -> None:
    server.behaviour.reply = lambda _: reply
    code, out = invoke("models", "check", str(write_model(tmp_path / "m.yaml", server.base_url)))
    assert code == 1 and "did not follow the instruction" in out and "ok: mock-llm" not in out


def test_report_recommend_compare_verify(tmp_path: Path, mini_suite: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    assert invoke("run", "--suite", str(mini_suite), "--model", "majority", "--model",
                  "char-ngram", "--out", str(runs))[0] == 0
    majority, ngram = sorted(runs.iterdir(), key=lambda p: "char-ngram" in p.name)
    code, out = invoke("report", str(runs), "-o", str(tmp_path / "ar.html"), "--lang", "ar",
                       "--reference", "fra_Latn", "--min-variety", "ary_Latn=0.2")
    html = (tmp_path / "ar.html").read_text(encoding="utf-8")
    assert code == 0 and 'dir="rtl"' in html and "ary_Latn ≥ 20.0%" in html

    code, out = invoke("recommend", str(runs), "--min-score", "0.01", "--json")
    assert code == 0 and json.loads(out)["recommended"] in {"majority", "char-ngram"}
    code, out = invoke("recommend", str(runs), "--min-score", "1")
    assert code == 1 and "no model meets every constraint" in out and "fails: intents" in out

    code, out = invoke("compare", str(majority), str(ngram))
    assert code == 0 and out.startswith("B − A: char-ngram − majority")
    assert re.search(r"intents +accuracy +all +n=", out) and "B better" in out

    code, out = invoke("verify", str(runs), "--suite", str(mini_suite))
    assert code == 0 and out.count("VERIFIED") == 2
    scores = ngram / "scores.json"
    scores.write_text(scores.read_text(encoding="utf-8").replace('"value": 0.', '"value": 0.9'),
                      encoding="utf-8")
    code, out = invoke("verify", str(ngram), "--suite", str(mini_suite))
    assert code == 1 and "FAILED" in out and "FAIL scores" in out

    monkeypatch.setenv("MOROCCAN_EVAL_CHROMIUM", str(tmp_path / "no-browser"))
    code, out = invoke("report", str(majority), "-o", str(tmp_path / "p.html"), "--pdf")
    assert code == 1 and "--pdf needs Chromium" in out and (tmp_path / "p.html").is_file()


@pytest.mark.parametrize(("args", "expected"), [
    (["recommend", "--min-variety", "ary_Arab:0.7"], "write VARIETY=SCORE"),
    (["recommend", "--min-variety", "ary_arab=0.7"], "(did you mean 'ary_Arab'?)"),
    (["recommend", "--min-score", "80"], "not a fraction between 0 and 1 (write 0.8 for 80%)"),
    (["report", "-o", "x.html", "--reference", "fra"], "unknown variety 'fra'"),
    (["report", "-o", "x.html", "--lang", "de"], "'de' is not one of 'en', 'fr', 'ar'"),
    (["verify", "--sample", "5x"], "--sample: '5x'"),
    (["verify", "--endpoint", "no-such.yaml"], "no model file"),
])
def test_decision_commands_reject_bad_input(args: list[str], expected: str, tmp_path: Path,
                                            mini_suite: Path) -> None:
    runs = tmp_path / "runs"
    assert invoke("run", "--suite", str(mini_suite), "--model", "majority",
                  "--out", str(runs))[0] == 0
    code, out = invoke(args[0], str(runs), *args[1:])
    assert code != 0 and expected in out and "Traceback" not in out
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize("command", [[], ["run"], ["demo"], ["report"], ["export"], ["rescore"],
                                     ["recommend"], ["compare"], ["verify"],
                                     ["anonymize", "apply"], ["consent", "withdraw"],
                                     ["retention", "purge"],
                                     ["suites", "show"], ["models", "check"]])
def test_every_command_has_help(command: list[str]) -> None:
    code, out = invoke(*command, "--help")
    assert code == 0 and "Usage:" in out


def test_demo_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "moroccan_eval", "demo", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    report = Path(proc.stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert report.is_file() and report.stat().st_size > 2000
    from moroccan_eval.suites.loader import load_suite, suite_dirs

    expected = [(model, name) for suite in suite_dirs()
                for name, task in load_suite(suite).tasks.items()
                for model in task.task_type.baselines]
    assert len(expected) >= 10  # 4 classification tasks x 2 baselines + translation x copy
    for model, task in expected:
        assert f"{model} · {task} · " in proc.stdout
    assert proc.stdout.count("signature: moroccan-eval:") == len(expected)
    assert "metric: chrF++|nrefs:1|" in proc.stdout


def test_recommend_warns_when_models_ran_different_tasks(tmp_path: Path,
                                                         mini_suite: Path) -> None:
    from moroccan_eval.synthetic import make_suite

    other = make_suite(tmp_path / "other", 4)
    for suite, model in ((mini_suite, "char-ngram"), (other, "majority")):
        code, out = invoke("run", "--suite", str(suite), "--model", model,
                           "--out", str(tmp_path / "runs"))
        assert code == 0, out
    code, out = invoke("recommend", str(tmp_path / "runs"))
    assert "warning: the models were not all run on the same tasks" in out
    code, out = invoke("recommend", str(complete_runs(tmp_path / "runs")[0]))
    assert "not all run on the same tasks" not in out


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_help_names_its_choices() -> None:
    """No option shows an empty choice list (a choice filled in only when used)."""
    seen = list(_commands(main))
    assert ("suites", "import") in seen and len(seen) > 30
    for path in seen:
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert " []" not in result.output, (path, result.output)


def test_a_run_whose_scores_cannot_spill_to_disk_says_which_folder_to_set(
        tmp_path: Path, mini_suite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Label tasks count their records in a temporary file past a few thousand: a disk
    that fills up meanwhile is one message naming the folder and TMPDIR, and no complete
    run (the full disk is simulated: the temporary file cannot be made)."""
    import errno
    import tempfile

    from moroccan_eval.stats import counted

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(counted, "SPILL_RECORDS", 4)  # the mini suite spills at once
    monkeypatch.setattr(tempfile, "TemporaryFile", full_disk)
    code, out = invoke("run", "--suite", str(mini_suite), "--model", "majority",
                       "--out", str(tmp_path / "runs"))
    assert code != 0, out
    assert out.startswith(f"error: scores are counted in a temporary file in "
                          f"{tempfile.gettempdir()}, which could not be written (No space "
                          "left on device): set TMPDIR to a folder with free space"), out
    assert complete_runs(tmp_path / "runs") == []
