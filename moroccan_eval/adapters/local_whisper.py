"""``faster_whisper``: speech recognition with a local Whisper model in CTranslate2 format
(the ``asr`` extra: ``pip install 'moroccan-eval[asr]'``).

The model directory is the user's (``model_path`` in the model YAML, e.g. one converted with
``ct2-transformers-converter`` or copied from a machine that has it); the toolkit never
downloads one: loading runs with ``local_files_only`` and the Hugging Face Hub offline.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import AdapterError, ConfigError
from .base import Adapter, ModelSpec, Request, Response, TaskContext


class FasterWhisperOptions(BaseModel):
    """Model YAML fields of the ``faster_whisper`` adapter."""

    model_config = ConfigDict(extra="forbid")
    model_path: Path = Field(description="a local CTranslate2 Whisper model directory")
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = Field(default="int8", description="e.g. int8, float16, float32")
    language: str | None = Field(default=None, description="ISO 639-1 code, e.g. ar or fr; "
                                 "None lets the model detect it")
    beam_size: int = Field(default=5, ge=1, le=20)
    cpu_threads: int = Field(default=0, ge=0, description="0: CTranslate2's default")
    vad_filter: bool = False

    @field_validator("model_path")
    @classmethod
    def _a_model_directory(cls, value: Path) -> Path:
        path = value.expanduser()
        if not (path / "model.bin").is_file():
            raise ValueError(f"{path} is not a CTranslate2 model directory (no model.bin); "
                             "point model_path at a local faster-whisper model — the toolkit "
                             "never downloads one")
        return path


class FasterWhisperAdapter(Adapter[FasterWhisperOptions]):
    """Transcribes the item's audio file in a worker thread with ``faster_whisper``."""

    Options = FasterWhisperOptions
    task_types = ("asr",)

    def __init__(self, spec: ModelSpec, options: FasterWhisperOptions):
        super().__init__(spec, options)
        try:
            import faster_whisper
        except ImportError:
            raise ConfigError(
                f"model '{spec.name}': the faster_whisper adapter needs the asr extra: "
                "pip install 'moroccan-eval[asr]'") from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self.model = faster_whisper.WhisperModel(
                str(options.model_path), device=options.device,
                compute_type=options.compute_type, cpu_threads=options.cpu_threads,
                num_workers=min(spec.limits.nominal, 4), local_files_only=True)
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError subclasses
            raise ConfigError(f"model '{spec.name}': cannot load {options.model_path}: "
                              f"{exc.__class__.__name__}: {exc}") from None
        self.root = Path(".")

    async def prepare(self, task: TaskContext) -> None:
        self.root = task.folder

    def _transcribe(self, audio: Path) -> str:
        options = self.options
        segments, _ = self.model.transcribe(
            str(audio), language=options.language, beam_size=options.beam_size,
            vad_filter=options.vad_filter, **self.spec.params)
        return " ".join(segment.text.strip() for segment in segments).strip()

    async def generate(self, request: Request) -> Response:
        audio = self.root / str(request.input.get("audio", ""))
        if not audio.is_file():
            raise AdapterError(f"cannot read audio {audio}: no such file")
        started = time.perf_counter()
        try:
            text = await asyncio.to_thread(self._transcribe, audio)
        except Exception as exc:  # undecodable audio and decoder failures: this item only
            raise AdapterError(f"faster_whisper failed on {audio.name}: "
                               f"{exc.__class__.__name__}: {exc}") from None
        return Response(text=text, latency_ms=(time.perf_counter() - started) * 1000)
