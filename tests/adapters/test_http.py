"""The HTTP client's certificates: aiohttp's SSL contexts are loaded in a thread beside the
start-up, and no session connects before they are in; against a real HTTPS server on
127.0.0.1 whose certificate only ``SSL_CERT_FILE`` trusts."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moroccan_eval.adapters.http import aiohttp, client_session

COMPLETION = {"choices": [{"message": {"role": "assistant", "content": "refund"}}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(COMPLETION).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``(base_url, certificate)``: an OpenAI-compatible HTTPS endpoint on 127.0.0.1 with a
    self-signed certificate (in a PEM file of its own)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
            ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/v1", cert_file
    finally:
        server.shutdown()


@pytest.fixture
def slow_bundle(https_server: tuple[str, Path], tmp_path: Path) -> Path:
    """3,000 copies of the server's certificate: loading them takes about a second, so what
    follows the import happens while the thread is still at it."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(https_server[1].read_bytes() * 3000)
    return bundle


def in_fresh_interpreter(script: str, trusted: Path,
                         *args: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by a new interpreter whose only trusted certificates are ``trusted``."""
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "SSL_CERT_FILE": str(trusted)})


#: Import the adapter (and with it aiohttp), note whether the certificates are still
#: loading, then ask the HTTPS endpoint at once.
CLIENT = """
import asyncio, json, sys
from moroccan_eval.adapters import build_adapter, http
from moroccan_eval.adapters.base import ModelSpec, Request

loading = http._certificates._thread.is_alive()
spec = ModelSpec.model_validate({"name": "tls", "adapter": "openai_compat", "model": "m",
                                 "base_url": sys.argv[1], "api_key_env": None})

async def ask():
    adapter = build_adapter(spec)
    try:
        return await adapter.generate(Request(messages=[{"role": "user", "content": "hi"}],
                                              input={"text": "hi"}))
    finally:
        await adapter.aclose()

answer = asyncio.run(ask())
print(json.dumps({"loading_after_import": loading, "text": answer.text}))
"""


def test_an_https_endpoint_is_verified_with_the_certificates_loaded_beside_the_start_up(
        https_server: tuple[str, Path], slow_bundle: Path) -> None:
    done = in_fresh_interpreter(CLIENT, slow_bundle, https_server[0])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"loading_after_import": True, "text": "refund"}


def test_a_process_may_exit_while_the_certificates_load(slow_bundle: Path) -> None:
    # a command that fails at once (a bad model YAML) exits right after the import
    for _ in range(3):
        done = in_fresh_interpreter(
            "import moroccan_eval.adapters.http; raise SystemExit(2)", slow_bundle)
        assert (done.returncode, done.stderr) == (2, "")


def test_a_child_forked_while_the_certificates_load_gets_them_all(slow_bundle: Path) -> None:
    done = in_fresh_interpreter("""
import os
import moroccan_eval.adapters.http
import aiohttp.connector as connector
pid = os.fork()  # at once: the thread is still loading
if pid == 0:
    os._exit(len(connector._SSL_CONTEXT_VERIFIED.get_ca_certs()))
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
""", slow_bundle)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"  # the server's certificate, in the child's context


def test_the_import_leaves_ssl_as_it_was_and_aiohttp_s_contexts_as_aiohttp_makes_them(
        https_server: tuple[str, Path]) -> None:
    done = in_fresh_interpreter("""
import ssl, _ssl, json
from moroccan_eval.adapters import http
import aiohttp.connector as connector
http._certificates.wait()
fresh = ssl.create_default_context().get_ca_certs()
method = "set_default_verify_paths"
print(json.dumps({
    "restored": getattr(ssl.SSLContext, method) is getattr(_ssl._SSLContext, method),
    "verified": connector._SSL_CONTEXT_VERIFIED.get_ca_certs() == fresh,
    "unverified": connector._SSL_CONTEXT_UNVERIFIED.get_ca_certs() == fresh,
    "subjects": [dict(pair for part in c["subject"] for pair in part)["commonName"] for c in fresh],
}))
""", https_server[1])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"restored": True, "verified": True, "unverified": True,
                                       "subjects": ["127.0.0.1"]}


def test_a_certificate_the_system_does_not_trust_is_refused(
        https_server: tuple[str, Path]) -> None:
    base_url, _ = https_server

    async def ask() -> None:
        async with client_session() as session, session.get(base_url + "/models"):
            pass

    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        asyncio.run(ask())
