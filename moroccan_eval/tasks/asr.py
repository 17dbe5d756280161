"""``asr``: speech to text, scored by word and character error rates.

WER and CER with jiwer after Moroccan-aware normalisation (Arabic diacritics, tatweel,
alef/ya/ta-marbuta variants, Eastern digits, Latin case and accents, punctuation; Arabizi
digits kept as letters); ``wer_raw`` on whitespace tokens as written. Edit counts and
reference lengths add up over utterances, so corpus rates bootstrap like every other
metric. Lower is better.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import JSONObject
from ..records import PredictionRecord
from ..suites.schema import Item
from ..text import normalize
from .base import AuditView, ImportRequest, MetricDef, TaskType
from .text_pairs import TextParser, check_reference_text, text_pair


def asr_edits(metric: str, hypothesis: str, reference: str) -> tuple[int, int]:
    """(edit operations, reference length) of one utterance for ``metric``."""
    import jiwer

    if metric == "wer_raw":
        ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    else:
        ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0, 0
    if not hyp:
        units = len(ref) if metric == "cer" else len(ref.split())
        return units, units
    process: Callable[..., Any] = (jiwer.process_characters if metric == "cer"
                                   else jiwer.process_words)
    out = process(ref, hyp)
    errors = out.substitutions + out.deletions + out.insertions
    return int(errors), int(out.substitutions + out.deletions + out.hits)


def _error_rate(name: str) -> MetricDef:
    def statistics(record: PredictionRecord) -> tuple[int, int]:
        return asr_edits(name, *text_pair(record))

    return MetricDef(name, statistics, higher_is_better=False)


class SpeechRecognition(TaskType):
    name = "asr"
    description = "speech to text (audio files inside the suite): WER, CER (jiwer)"
    importable = True

    def metrics(self) -> dict[str, MetricDef]:
        return {name: _error_rate(name) for name in ("wer", "cer", "wer_raw")}

    def parser(self) -> TextParser:
        return TextParser()

    def check_item(self, item: Item, suite_root: Path) -> list[str]:
        """The transcript, and an audio file inside the suite that is readable audio and
        lasts what a declared ``fields.duration_s`` says."""
        problems = check_reference_text(item, "the transcript")
        if problems:
            return problems
        fields = item["fields"]
        audio = fields.get("audio")
        root = suite_root.resolve()
        file = (root / str(audio)).resolve() if audio else None
        if file is None or root not in file.parents or not file.is_file():
            return ["fields.audio must name an audio file inside the suite "
                    f"(e.g. data/audio/x.wav), not {audio!r}"]
        from ..audio import audio_duration

        try:
            duration = audio_duration(file)
        except ValueError as exc:
            return [str(exc)]
        declared = fields.get("duration_s")
        if declared is None:
            return []
        if not isinstance(declared, int | float) or isinstance(declared, bool):
            return [f"fields.duration_s must be a number of seconds, not {declared!r}"]
        if abs(float(declared) - duration) > 0.05:
            return [f"fields.duration_s says {declared} s but {audio} lasts {duration:.2f} s"]
        return []

    def text_length(self, item: Item) -> int:
        return len(str(item["reference"]))  # the input is an audio path: measure the transcript

    def audit_view(self, item: Item) -> AuditView:
        # the input is an audio path: what is said is the transcript
        return {**super().audit_view(item), "text": str(item["reference"])}

    @classmethod
    def import_problems(cls, mapping: Mapping[str, str], target_variety: str | None) -> list[str]:
        if "audio" in mapping and "reference" in mapping:
            return []
        return ["a speech import needs --map audio=COLUMN (audio file paths, relative to the "
                "source file's folder) and reference=COLUMN (transcripts)"]

    @classmethod
    def import_task(cls, request: ImportRequest) -> JSONObject:
        """Copies each recording into ``data/audio/`` and records its duration."""
        recordings = _recordings(request.source.parent, request.items)
        (request.staging / "data" / "audio").mkdir()
        for item in request.items:
            source, duration = recordings[item["id"]]
            copied = f"data/audio/{item['id']}{source.suffix.lower()}"
            shutil.copyfile(source, request.staging / copied)
            item["fields"] = {"audio": copied, "duration_s": duration}
        return {
            "type": cls.name,
            "description": f"Imported from {request.source.name}: transcribe the recording.",
            "input_fields": ["audio"],
            "metrics": ["wer", "cer", "wer_raw"],
            "prompt": {"user": "{{ audio }}"},
        }


def _recordings(folder: Path, items: list[Item]) -> dict[str, tuple[Path, float]]:
    """Each item's recording (paths relative to the source file's folder) and its duration;
    every missing or unreadable file is reported at once."""
    from ..audio import audio_duration

    found: dict[str, tuple[Path, float]] = {}
    problems = []
    for item in items:
        path = Path(str(item["fields"]["text"]))
        path = path if path.is_absolute() else folder / path
        if not path.is_file():
            problems.append(f"item {item['id']}: no audio file {path}")
            continue
        try:
            duration = round(audio_duration(path), 3)
        except ValueError as exc:
            problems.append(f"item {item['id']}: {path}: {exc}")
            continue
        found[item["id"]] = (path, duration)
    if problems:
        raise ConfigError("audio files", problems[:20])
    return found
