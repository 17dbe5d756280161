"""A run's status says what happened: `failed` (and a non-zero exit) when no request
succeeded or more failed than --max-error-rate allows; SIGTERM gives `interrupted` like
SIGINT; folder commands skip a stale unfinished directory instead of failing on it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, write_model

from moroccan_eval.cli import main
from moroccan_eval.mockserver import MockServer
from moroccan_eval.synthetic import make_suite


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(suite: Path, model: Path, out: Path, *extra: str) -> tuple[int, str, Path | None]:
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--model", str(model),
                                       "--out", str(out), "--no-cache", "--no-progress",
                                       *extra])
    dirs = list(out.iterdir()) if out.is_dir() else []
    return result.exit_code, result.output, dirs[0] if dirs else None


def _status(run_dir: Path) -> str:
    return str(json.loads((run_dir / "manifest.json").read_text("utf-8"))["status"])


@pytest.mark.parametrize("base_url", ["closed-port", "http://", "401"])
def test_a_run_where_no_request_succeeded_is_failed(tmp_path: Path, mini_suite: Path,
                                                     server: MockServer, base_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url = {"closed-port": f"http://127.0.0.1:{_free_port()}/v1", "http://": "http://",
           "401": server.base_url}[base_url]
    extra: dict[str, object] = {}
    if base_url == "401":
        server.behaviour.require_key = "the-right-key"
        monkeypatch.setenv("WRONG_KEY", "a-wrong-key")
        extra["api_key_env"] = "WRONG_KEY"
    model = write_model(tmp_path / "m.yaml", url, limits={"retries": 0, "timeout_s": 2},
                        **extra)
    code, output, run_dir = _run(mini_suite, model, tmp_path / "runs")
    assert code == 1, output
    assert "Traceback" not in output and "no request succeeded" in output
    assert run_dir is not None and _status(run_dir).startswith("failed: no request succeeded")
    assert "a-wrong-key" not in output


def test_max_error_rate(tmp_path: Path, mini_suite: Path, server: MockServer) -> None:
    model = write_model(tmp_path / "m.yaml", server.base_url,
                        limits={"retries": 0, "concurrency": 1})
    server.behaviour.failures = [500, 500, 500]  # 3 of 12 requests: 25%
    code, output, run_dir = _run(mini_suite, model, tmp_path / "strict", "--max-error-rate",
                                 "0.1")
    assert code == 1 and "above --max-error-rate 10%" in output
    assert run_dir is not None and _status(run_dir).startswith("failed: 3 of 12 requests")
    server.behaviour.failures = [500, 500, 500]
    code, output, run_dir = _run(mini_suite, model, tmp_path / "lenient", "--max-error-rate",
                                 "0.5")
    assert code == 0, output
    assert run_dir is not None and _status(run_dir) == "complete"


def test_sigterm_leaves_an_interrupted_run(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite", 150)
    with MockServer() as server:
        server.behaviour.latency_s = 0.05
        model = write_model(tmp_path / "m.yaml", server.base_url, limits={"concurrency": 2})
        proc = subprocess.Popen(
            [sys.executable, "-m", "moroccan_eval", "run", "--suite", str(suite), "--model",
             str(model), "--out", str(tmp_path / "runs"), "--no-cache", "--no-progress"],
            env={**os.environ, "PYTHONPATH": str(REPO / "tests")},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while server.requests < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    assert b"Traceback" not in err and b"interrupted" in err
    [run_dir] = (tmp_path / "runs").iterdir()
    assert _status(run_dir) == "interrupted"


def test_folder_commands_skip_a_stale_unfinished_run(tmp_path: Path, mini_suite: Path) -> None:
    runs = tmp_path / "runs"
    code, output, done = _run(mini_suite, Path("char-ngram"), runs)
    assert code == 0 and done is not None, output
    stale = runs / (done.name + "-stale")  # what a SIGKILL leaves: status running
    shutil.copytree(done, stale)
    manifest = json.loads((stale / "manifest.json").read_text("utf-8"))
    (stale / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    (stale / "scores.json").unlink()
    empty = tmp_path / "empty"  # a folder given by mistake (a typo'd glob, a wrong level)
    empty.mkdir()
    runner = CliRunner()
    for args in (["report", str(runs), str(empty), "-o", str(tmp_path / "r.html")],
                 ["recommend", str(runs), str(empty)],
                 ["verify", str(runs), str(empty), "--suite", str(mini_suite)],
                 ["export", str(runs), str(empty), "-o", str(tmp_path / "s.csv")]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert f"warning: skipped {stale.name}: status 'running'" in result.output
        assert f"warning: {empty}: no run directory in it" in result.output
    named = runner.invoke(main, ["report", str(stale), "-o", str(tmp_path / "x.html")])
    assert named.exit_code == 1 and "status is 'running'" in named.output  # named: refused
