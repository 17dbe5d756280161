"""The task-type registry.

Every task type, built-in or third-party, registers the same way: a :class:`TaskType`
subclass named under the entry-point group ``moroccan_eval.task_types``::

    [project.entry-points."moroccan_eval.task_types"]
    yes_no = "my_package.yes_no:YesNo"

Types are imported only when a task of that type is used, so start-up stays fast.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, PackageNotFoundError, distribution, entry_points

from ..errors import ConfigError, did_you_mean
from ..suites.schema import TaskSpec
from .base import AnswerParser, MetricDef, ReportTally, TaskType

__all__ = [
    "ENTRY_POINT_GROUP",
    "AnswerParser",
    "MetricDef",
    "ReportTally",
    "TaskType",
    "for_spec",
    "get",
    "names",
]

ENTRY_POINT_GROUP = "moroccan_eval.task_types"


@cache
def _built_in() -> dict[str, EntryPoint]:
    """The toolkit's own types: the entry points of its own distribution, one file read
    (scanning every installed distribution takes about 10 ms of each start-up)."""
    try:
        own = distribution("moroccan-eval").entry_points
    except PackageNotFoundError:
        return {}
    return {ep.name: ep for ep in own if ep.group == ENTRY_POINT_GROUP}


@cache
def _registered() -> dict[str, EntryPoint]:
    """Every type: a plugin cannot take a built-in type's name."""
    return {**{ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}, **_built_in()}


def names() -> list[str]:
    """Every registered task type, without importing any."""
    return sorted(_registered())


@cache
def get(name: str) -> type[TaskType]:
    """The task type registered under ``name``."""
    entry = _built_in().get(name) or _registered().get(name)
    if entry is None:
        registered = _registered()
        known = ", ".join(sorted(registered)) or (
            "none (is moroccan-eval installed? pip install -e . registers the built-in types)")
        raise ConfigError(f"unknown task type '{name}'{did_you_mean(name, registered)}; "
                          f"registered: {known}")
    try:
        cls = entry.load()
    except Exception as exc:  # a broken plugin must not look like a toolkit bug
        raise ConfigError(f"task type '{name}' ({entry.value}) cannot be imported: "
                          f"{exc.__class__.__name__}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, TaskType)):
        raise ConfigError(f"task type '{name}' ({entry.value}) is not a TaskType subclass")
    if getattr(cls, "name", None) != name:
        raise ConfigError(f"task type '{name}' ({entry.value}) declares name "
                          f"{getattr(cls, 'name', None)!r}; the entry point and the class "
                          "must agree")
    return cls


def for_spec(spec: TaskSpec) -> TaskType:
    """The task type of a task spec, bound to it."""
    return get(spec.type)(spec)


def clear_cache() -> None:
    """Forget registered types (after installing a plugin in a running process)."""
    _built_in.cache_clear()
    _registered.cache_clear()
    get.cache_clear()
