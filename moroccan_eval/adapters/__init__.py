"""Adapter registry and model specs.

Adapters are found by name: the built-ins below, then any class registered by a
third-party package under the entry point group ``moroccan_eval.adapters``::

    [project.entry-points."moroccan_eval.adapters"]
    my-adapter = "my_package.adapter:MyAdapter"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError, did_you_mean
from ..io import format_validation_errors, load_yaml, validate
from ..resources import shipped
from .base import Adapter, ModelSpec, Request, Response, TaskContext

__all__ = [
    "BUILTIN_MODELS",
    "Adapter",
    "ModelSpec",
    "Request",
    "Response",
    "TaskContext",
    "adapter_names",
    "build_adapter",
    "load_model",
]

ENTRY_POINT_GROUP = "moroccan_eval.adapters"

# Imported lazily: start-up must not pay for aiohttp or scikit-learn unless used.
_BUILTIN_ADAPTERS = {
    "openai_compat": "moroccan_eval.adapters.openai_compat:OpenAICompatAdapter",
    "llamacpp": "moroccan_eval.adapters.llamacpp:LlamaCppAdapter",
    "openai_audio": "moroccan_eval.adapters.transcription:OpenAITranscriptionAdapter",
    "faster_whisper": "moroccan_eval.adapters.local_whisper:FasterWhisperAdapter",
    "transformers": "moroccan_eval.adapters.transformers:TransformersAdapter",
    "transformers_embed": "moroccan_eval.adapters.transformers_embed:TransformersEmbedAdapter",
    "majority": "moroccan_eval.adapters.baselines:MajorityAdapter",
    "char-ngram": "moroccan_eval.adapters.baselines:CharNgramAdapter",
    "copy": "moroccan_eval.adapters.baselines:CopyAdapter",
    "retrieval": "moroccan_eval.adapters.retrieval:RetrievalAdapter",
    "rules": "moroccan_eval.adapters.baselines:RulesAdapter",
    "tool-router": "moroccan_eval.adapters.baselines:ToolRouterAdapter",
    "command": "moroccan_eval.adapters.command:CommandAdapter",
    "python": "moroccan_eval.adapters.python_callable:PythonCallableAdapter",
}

#: Models usable by name without a YAML file (``--model char-ngram``); each task type names
#: the ones that give it a floor (``TaskType.baselines``).
BUILTIN_MODELS = ("majority", "char-ngram", "copy", "retrieval", "rules", "tool-router")


def _plugin_adapters() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_names() -> list[str]:
    """Every adapter name: built-ins first, then plugins."""
    return list({**_BUILTIN_ADAPTERS, **_plugin_adapters()})


def adapter_class(name: str) -> type[Adapter[Any]]:
    """Import the adapter class registered under ``name``."""
    target = _BUILTIN_ADAPTERS.get(name) or _plugin_adapters().get(name)
    if target is None:
        raise ConfigError(
            f"unknown adapter '{name}'{did_you_mean(name, adapter_names())}. "
            f"Available: {', '.join(adapter_names())}"
        )
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"adapter '{name}' ({target}) cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise ConfigError(f"adapter '{name}' ({target}) is not a moroccan_eval Adapter class")
    return cls


def load_model(name_or_path: str) -> ModelSpec:
    """A model spec from a YAML path, a built-in model name or a shipped ``models/`` file.

    Every problem of the file (common fields and adapter options) is reported at once.
    """
    path = Path(name_or_path)
    if name_or_path in BUILTIN_MODELS and not path.exists():
        return ModelSpec(name=name_or_path, adapter=name_or_path)
    if not path.exists():
        candidate = shipped("models", f"{name_or_path}.yaml")
        if candidate.is_file():
            path = candidate
        else:
            shipped_names = [p.stem for p in shipped("models").glob("*.yaml")]
            choices = [*BUILTIN_MODELS, *shipped_names]
            raise ConfigError(
                f"no model file '{name_or_path}' and no built-in model of that name"
                f"{did_you_mean(name_or_path, choices)}. Built-in: {', '.join(BUILTIN_MODELS)}; "
                f"or write a model YAML (see models/ for examples)"
            )
    spec = validate(ModelSpec, load_yaml(path, "model file"), str(path))
    check_options(spec, str(path))
    return spec


def check_options(spec: ModelSpec, source: str) -> BaseModel:
    """Validate the adapter-specific fields of a spec with the adapter's ``Options``."""
    cls = adapter_class(spec.adapter)
    try:
        return cls.Options.model_validate(spec.options)
    except ValidationError as exc:
        raise ConfigError(
            f"{source}: invalid options for adapter '{spec.adapter}'",
            format_validation_errors(exc),
        ) from None


def build_adapter(spec: ModelSpec) -> Adapter[Any]:
    """Instantiate the adapter a spec names (reads the API key from the environment)."""
    options = check_options(spec, f"model '{spec.name}'")
    return adapter_class(spec.adapter)(spec, options)
