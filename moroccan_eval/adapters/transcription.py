"""``openai_audio``: speech recognition through an OpenAI-compatible
``/audio/transcriptions`` endpoint (OpenAI, whisper.cpp server, vLLM, faster-whisper
servers). The audio file named by the item's ``fields.audio`` is sent as multipart form
data; retries, rate limits and timeouts are the runner's, as for chat models.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

from ..errors import AdapterError
from .base import ModelSpec, Request, Response, TaskContext
from .http import aiohttp
from .openai_compat import OpenAICompatAdapter, OpenAICompatOptions
from .redact import without_lone_surrogates


class TranscriptionOptions(OpenAICompatOptions):
    """Model YAML fields of the ``openai_audio`` adapter."""

    path: str = "/audio/transcriptions"
    language: str | None = None  # an ISO 639-1 hint for the server, e.g. "ar" or "fr"


class OpenAITranscriptionAdapter(OpenAICompatAdapter):
    """Transcribes the item's audio file with one multipart request."""

    Options = TranscriptionOptions
    task_types = ("asr",)

    def __init__(self, spec: ModelSpec, options: TranscriptionOptions):
        super().__init__(spec, options)
        self.headers.pop("Content-Type", None)  # aiohttp sets the multipart boundary
        self.language = options.language
        self.root = Path(".")

    async def prepare(self, task: TaskContext) -> None:
        self.root = task.folder

    async def generate(self, request: Request) -> Response:
        audio = self.root / str(request.input.get("audio", ""))
        try:
            data = audio.read_bytes()
        except OSError as exc:
            raise AdapterError(f"cannot read audio {audio}: {exc.strerror}") from None
        form = aiohttp.FormData()
        form.add_field("file", data, filename=audio.name,
                       content_type=mimetypes.guess_type(audio.name)[0] or "audio/wav")
        form.add_field("model", self.options.model)
        if self.language:
            form.add_field("language", self.language)
        for key, value in self.spec.params.items():
            form.add_field(key, str(value))
        body, latency_ms = await self._post(data=form)
        try:
            text = json.loads(body)["text"]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise AdapterError(f"malformed transcription from {self.url}: "
                               f"{self._quote(body, 80)!r}", retryable=True) from None
        if not isinstance(text, str):
            raise AdapterError(f"transcription from {self.url} is not text: "
                               f"{self._quote(repr(text), 80)}")
        return Response(text=without_lone_surrogates(text), latency_ms=latency_ms)
