"""Any OpenAI-compatible chat completions endpoint: OpenAI, Mistral, Azure, vLLM,
llama.cpp server, Ollama, TGI.

aiohttp was chosen by measurement: on this project's reference machine (1,000 requests,
0.2 s server latency, concurrency 64) one shared aiohttp session reached 0.88-0.93 of the
ideal wall time where httpx 0.28 reached 0.28 (see ``benchmarks/throughput.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import re
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from yarl import URL

from ..errors import AdapterError
from ..io import JSONObject, json_line
from .base import Adapter, ModelSpec, Request, Response, TaskContext
from .http import aiohttp, client_session, read_capped, read_prefix
from .redact import Redactor, without_lone_surrogates

#: How deep a response's JSON may nest (a chat completion nests 6 levels): deeper ones are
#: refused, as the recursive code that copies, redacts and caches responses would overflow.
MAX_DEPTH = 64
#: The largest token count believed (costs and the spend cap are computed from it).
MAX_TOKENS = 10**12
#: An HTTP header name (an RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: A JSON escape of a UTF-16 surrogate: the answer may hold a lone one, which no UTF-8
#: file can store.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
#: How long the identity's ``GET {base_url}/models`` may take: it runs beside the requests,
#: best effort, and many endpoints do not have it.
IDENTITY_TIMEOUT_S = 3.0


def label_constraint(kind: str | None, labels: Sequence[str]) -> JSONObject:
    """The request fields that restrict an answer to one of ``labels``: a JSON schema
    (the answer is then ``{"label": "..."}``, which the label parser reads) or a GBNF
    grammar; nothing when not asked for or when the task has no labels."""
    if kind is None or not labels:
        return {}
    if kind == "gbnf":
        quoted = (json.dumps(label, ensure_ascii=False) for label in labels)
        return {"grammar": "root ::= " + " | ".join(quoted)}
    schema: JSONObject = {"type": "object", "properties": {"label": {"enum": list(labels)}},
                          "required": ["label"], "additionalProperties": False}
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": "label", "strict": True,
                                                "schema": schema}}}


class OpenAICompatOptions(BaseModel):
    """Model YAML fields of the ``openai_compat`` adapter."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(pattern=r"^https?://", description="e.g. http://localhost:11434/v1")
    model: str = Field(min_length=1, description="the model name the endpoint expects")
    path: str = "/chat/completions"
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra headers; their values are treated as "
        "secrets (redacted from every output) but keys belong in api_key_env"
    )
    constrained_output: Literal["json_schema", "gbnf"] | None = Field(
        default=None, description="for tasks with labels, constrain the answer to one of "
        "them: 'json_schema' sends an OpenAI response_format (vLLM, OpenAI, llama.cpp), "
        "'gbnf' a llama.cpp grammar"
    )

    @field_validator("headers")
    @classmethod
    def _well_formed_headers(cls, value: dict[str, str]) -> dict[str, str]:
        # refused here, naming the header but never showing its value (often a key):
        # aiohttp would refuse each request ("adapter crashed") or send a broken one
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a header name (letters, digits and "
                                 "-_.!#$%&'*+^`|~)")
            if "\r" in text or "\n" in text or "\0" in text:
                raise ValueError(f"the value of {name} holds a line break or NUL (a header "
                                 "injection)")
        return value

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        # a key in the URL would be in every error message and in the run's manifest
        try:
            url = URL(value)
        except ValueError:
            return value  # the request reports the bad URL, per item
        if url.user is not None or url.password is not None:
            raise ValueError("holds credentials (user:password@): put the key in the "
                             "environment variable named by api_key_env instead")
        return value


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


def shallow(value: Any, depth: int) -> bool:
    """Whether a JSON value nests at most ``depth`` levels (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level > depth:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return True


class OpenAICompatAdapter(Adapter[OpenAICompatOptions]):
    """Chat completions over HTTP with one pooled ``aiohttp`` session per model."""

    Options = OpenAICompatOptions
    replaces_lone_surrogates = True  # :meth:`_parse`: the one source of every field

    def __init__(self, spec: ModelSpec, options: OpenAICompatOptions):
        super().__init__(spec, options)
        self.url = options.base_url.rstrip("/") + "/" + options.path.lstrip("/")
        #: why no request can be sent, e.g. a base_url without a host; every request then
        #: fails with it (a per-item error like any unreachable endpoint's)
        self._url_problem: str | None = None
        example = "write the endpoint's address, e.g. http://localhost:11434/v1"
        try:
            if not URL(self.url).host:
                self._url_problem = f"base_url '{options.base_url}' has no host: {example}"
        except ValueError as exc:  # a port out of range, a broken IPv6 address ...
            self._url_problem = (f"base_url '{options.base_url}' is not a valid URL ({exc}): "
                                 f"{example}")
        self._redact = Redactor.for_spec(spec)
        self.headers = {"Content-Type": "application/json", **options.headers}
        key = spec.api_key()
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self._session: aiohttp.ClientSession | None = None
        self._identity: asyncio.Task[JSONObject | None] | None = None
        self._constraint: JSONObject = {}

    async def prepare(self, task: TaskContext) -> None:
        self._constraint = label_constraint(self.options.constrained_output, task.labels)
        # in the background, so that a slow or missing /models never delays the run
        if self._identity is None and self._url_problem is None:
            self._identity = asyncio.create_task(self._fetch_identity())

    async def _fetch_identity(self) -> JSONObject | None:
        """The model ids ``GET {base_url}/models`` lists, or ``None``. Asked in a session
        of its own: in the requests' pool, it held one of their connections while all were
        wanted, and one worker's first request waited a whole round for it."""
        url = self.options.base_url.rstrip("/") + "/models"
        try:
            async with asyncio.timeout(IDENTITY_TIMEOUT_S), client_session() as session, \
                    session.get(url, headers=self.headers, allow_redirects=False) as resp:
                if resp.status != 200:
                    return None
                data = json.loads(await read_capped(resp, 256 * 1024, url))
        except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError, AdapterError):
            return None
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            return None
        ids = [self._redact.text(entry["id"])[:200] for entry in entries[:100]
               if isinstance(entry, dict) and isinstance(entry.get("id"), str)]
        return {"adapter": "openai_compat", "models": list(ids)}

    async def settle_identity(self) -> None:
        if self._identity is not None:
            await asyncio.wait([self._identity])  # _fetch_identity bounds itself in time

    def identity(self) -> JSONObject | None:
        """The model ids the endpoint lists at ``{base_url}/models`` (fetched in the
        background from :meth:`prepare`), or ``None`` while unknown or unavailable."""
        task = self._identity
        if task is None or not task.done() or task.cancelled() or task.exception():
            return None
        return task.result()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.spec.limits.in_flight, ttl_dns_cache=300)
            self._session = client_session(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                json_serialize=json_line,  # UTF-8 kept: a shorter body, made faster
            )
        return self._session

    async def generate(self, request: Request) -> Response:
        payload: dict[str, Any] = {
            "model": self.options.model,
            "messages": request.messages,
            **self.spec.params,
            **request.params,
            **self._constraint,
        }
        if request.tools:
            payload["tools"] = request.tools
        body, latency_ms = await self._post(json=payload)
        return self._parse(body, latency_ms)

    async def _post(self, **request: Any) -> tuple[bytes, float]:
        """POST to the endpoint; the body and the latency in ms, or an AdapterError that
        says whether a retry may help. Redirects are not followed (see
        :meth:`_redirect_error`) and the body is read up to ``limits.max_response_bytes``."""
        if self._url_problem is not None:
            raise AdapterError(self._url_problem)
        started = time.perf_counter()
        try:
            # allow_redirects=False: aiohttp would resend the custom headers (keys, often)
            # to whatever origin a redirect names; only Authorization is dropped by it
            async with self._client().post(self.url, headers=self.headers,
                                           allow_redirects=False, **request) as resp:
                if 300 <= resp.status < 400:
                    raise self._redirect_error(resp)
                if resp.status >= 400:
                    raise self._http_error(resp.status, *await read_prefix(resp),
                                           resp.headers.get("Retry-After"))
                body = await read_capped(resp, self.spec.limits.max_response_bytes, self.url)
        except aiohttp.InvalidURL as exc:
            raise AdapterError(f"invalid URL {self.url}: {exc}; check base_url and path in "
                               "the model YAML") from None
        except aiohttp.ClientConnectorError as exc:
            raise AdapterError(
                f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}; is the server "
                "running, and are the host and port in base_url right?", retryable=True
            ) from None
        except aiohttp.ClientError as exc:  # the connection broke after it was made
            raise AdapterError(
                f"connection to {self.url} broke: {exc.__class__.__name__}: {exc}",
                retryable=True) from None
        return body, (time.perf_counter() - started) * 1000

    def _quote(self, data: bytes | str, chars: int, *, complete: bool = True) -> str:
        """The first ``chars`` characters of an untrusted text for an error message, its
        secrets redacted *before* the cut (:meth:`Redactor.snippet`); ``complete=False``
        when ``data`` is only the start of a body."""
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        return self._redact.snippet(text, chars, complete=complete)

    def _redirect_error(self, resp: aiohttp.ClientResponse) -> AdapterError:
        """A 3xx is an error naming where it points: following it would send the key and
        the custom headers to an address the model YAML does not name."""
        location = resp.headers.get("Location")
        target = "(no Location header)"
        if location:
            try:
                target = str(resp.url.join(URL(location)))
            except ValueError:
                target = location
        return AdapterError(
            f"HTTP {resp.status} redirect from {self.url} to {self._quote(target, 300)}: not "
            "followed, so that no key or header goes to an address the model YAML does not "
            "name; set base_url to the final URL")

    def _http_error(self, status: int, body: bytes, complete: bool,
                    retry_after: str | None) -> AdapterError:
        if status in (401, 403):
            hint = (
                f"check the key in ${self.spec.api_key_env}"
                if self.spec.api_key_env
                else "the endpoint wants a key: set api_key_env in the model YAML"
            )
            return AdapterError(f"HTTP {status} from {self.url}: bad credentials; {hint}")
        retryable = status == 429 or status >= 500
        return AdapterError(
            f"HTTP {status} from {self.url}: "
            f"{self._quote(body, 200, complete=complete).strip()}",
            retryable=retryable,
            retry_after=parse_retry_after(retry_after) if retryable else None,
        )

    def _parse(self, body: bytes, latency_ms: float) -> Response:
        """The answer in a chat completion, each field checked: the endpoint is untrusted,
        and a wrong type here would crash scoring far from its cause."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurdly deep nesting
            raise AdapterError(
                f"malformed JSON from {self.url}: {self._quote(body, 80)!r}; is base_url "
                "the API root (e.g. ending in /v1)?"
            ) from None
        # each level of nesting opens a bracket: a usual answer has a handful, and
        # counting them is 15 times faster than walking the parsed answer
        if body.count(b"{") + body.count(b"[") > MAX_DEPTH and not shallow(data, MAX_DEPTH):
            raise AdapterError(f"response from {self.url} is nested deeper than {MAX_DEPTH} "
                               "levels")
        if _SURROGATE.search(body):
            data = without_lone_surrogates(data)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise AdapterError(f"response from {self.url} has no choices")
        message = choices[0].get("message") or {}
        if not isinstance(message, dict):
            raise AdapterError(f"response from {self.url}: message is not an object")
        tool_calls = message.get("tool_calls") or []
        if not isinstance(tool_calls, list) or not all(isinstance(c, dict) for c in tool_calls):
            raise AdapterError(f"response from {self.url}: tool_calls is not a list of objects")
        usage = data.get("usage") or {}
        if not isinstance(usage, dict):
            raise AdapterError(f"response from {self.url}: usage is not an object")
        return Response(
            text=self._content(message.get("content")),
            tool_calls=list(tool_calls),
            input_tokens=self._tokens(usage, "prompt_tokens"),
            output_tokens=self._tokens(usage, "completion_tokens"),
            latency_ms=latency_ms,
            raw=data,
        )

    def _content(self, content: Any) -> str:
        """The message text: a string, nothing, or a list of content parts (the newer
        OpenAI format) whose text parts are joined."""
        if content is None or isinstance(content, str):
            return content or ""
        if isinstance(content, list) and all(isinstance(part, dict) for part in content):
            texts = [part.get("text") for part in content if part.get("type") == "text"]
            if all(isinstance(text, str) for text in texts):
                return "".join(str(text) for text in texts)
        raise AdapterError(f"response from {self.url}: content is not text: "
                           f"{self._quote(json.dumps(content), 80)}")

    def _tokens(self, usage: dict[str, Any], key: str) -> int:
        """A token count: a whole number from 0 to 10^12 (costs and the spend cap are
        computed from it, so a negative or absurd count is refused, not believed)."""
        value = usage.get(key)
        if value is None:
            return 0
        if (isinstance(value, int | float) and not isinstance(value, bool)
                and float(value).is_integer() and 0 <= value <= MAX_TOKENS):
            return int(value)
        raise AdapterError(f"response from {self.url}: usage.{key} is not a token count: "
                           f"{self._quote(repr(value), 40)}")

    async def aclose(self) -> None:
        if self._identity is not None and not self._identity.done():
            self._identity.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._identity
        if self._session is not None:
            await self._session.close()
            self._session = None
