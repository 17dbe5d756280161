"""Any OpenAI-compatible chat completions endpoint: OpenAI, Mistral, Azure, vLLM,
llama.cpp server, Ollama, TGI.

aiohttp was chosen by measurement: on this project's reference machine (1,000 requests,
0.2 s server latency, concurrency 64) one shared aiohttp session reached 0.88-0.93 of the
ideal wall time where httpx 0.28 reached 0.28 (see ``benchmarks/throughput.py``).
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from ..errors import AdapterError
from .base import Adapter, ModelSpec, Request, Response


class OpenAICompatOptions(BaseModel):
    """Model YAML fields of the ``openai_compat`` adapter."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(pattern=r"^https?://", description="e.g. http://localhost:11434/v1")
    model: str = Field(min_length=1, description="the model name the endpoint expects")
    path: str = "/chat/completions"
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra non-secret headers (keys go in api_key_env)"
    )


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAICompatAdapter(Adapter[OpenAICompatOptions]):
    """Chat completions over HTTP with one pooled ``aiohttp`` session per model."""

    Options = OpenAICompatOptions

    def __init__(self, spec: ModelSpec, options: OpenAICompatOptions):
        super().__init__(spec, options)
        self.url = options.base_url.rstrip("/") + "/" + options.path.lstrip("/")
        self.headers = {"Content-Type": "application/json", **options.headers}
        key = spec.api_key()
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.spec.limits.concurrency, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                json_serialize=json.dumps,
            )
        return self._session

    async def generate(self, request: Request) -> Response:
        payload: dict[str, Any] = {
            "model": self.options.model,
            "messages": request.messages,
            **self.spec.params,
            **request.params,
        }
        if request.tools:
            payload["tools"] = request.tools
        body, latency_ms = await self._post(json=payload)
        return self._parse(body, latency_ms)

    async def _post(self, **request: Any) -> tuple[bytes, float]:
        """POST to the endpoint; the body and the latency in ms, or an AdapterError that
        says whether a retry may help."""
        started = time.perf_counter()
        try:
            async with self._client().post(self.url, headers=self.headers, **request) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                body = await resp.read()
        except aiohttp.ClientError as exc:
            raise AdapterError(
                f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}", retryable=True
            ) from None
        if status >= 400:
            raise self._http_error(status, body, retry_after)
        return body, (time.perf_counter() - started) * 1000

    def _http_error(self, status: int, body: bytes, retry_after: str | None) -> AdapterError:
        snippet = body[:200].decode("utf-8", "replace").strip()
        if status in (401, 403):
            hint = (
                f"check the key in ${self.spec.api_key_env}"
                if self.spec.api_key_env
                else "the endpoint wants a key: set api_key_env in the model YAML"
            )
            return AdapterError(f"HTTP {status} from {self.url}: bad credentials; {hint}")
        retryable = status == 429 or status >= 500
        return AdapterError(
            f"HTTP {status} from {self.url}: {snippet}",
            retryable=retryable,
            retry_after=parse_retry_after(retry_after) if retryable else None,
        )

    def _parse(self, body: bytes, latency_ms: float) -> Response:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AdapterError(
                f"malformed JSON from {self.url}: {body[:80]!r}; is base_url the API root "
                "(e.g. ending in /v1)?"
            ) from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise AdapterError(f"response from {self.url} has no choices")
        message = choices[0].get("message") or {}
        usage = data.get("usage") or {}
        return Response(
            text=message.get("content") or "",
            tool_calls=list(message.get("tool_calls") or []),
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            latency_ms=latency_ms,
            raw=data,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
