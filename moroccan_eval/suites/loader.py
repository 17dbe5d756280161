"""The suite loader: a suite that fails a check never loads, and every problem is
reported at once.

Stages, each its own function: the spec (``suite.yaml``), the seal (every listed file
present with its sha256), the card (``CARD.md`` front matter), the task files (checked by
their task type), the items (checked column by column and by their task type), and the
privacy gate (consents, residual personal data).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import random
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic import ValidationError

from .. import tasks, varieties, verdicts
from ..errors import ConfigError, MoroccanEvalError, MoroccanEvalWarning, SuiteError, did_you_mean
from ..io import JSONValue, format_validation_errors, load_yaml, parse_yaml, read_text, sha256_file
from ..resources import shipped
from ..tasks.base import TaskType
from .checks import MAX_CONTEXT_CHARS, check_item_lines, check_items, check_task
from .schema import CardSpec, Item, SuiteSpec, TaskSpec, placeholder_problem
from .seal import TASK_FILE_FIELDS, confined, escape_problem
from ..verdicts import code_fingerprint
from ..version import __version__
from .table import ItemTable

#: Files a suite keeps at its root besides suite.yaml and its task and data folders.
ROOT_FILES = ("suite.yaml", "CARD.md", "consent.yaml", "consent.csv", "tombstones.csv")


@dataclass
class Task:
    """A loaded task: its spec, its task type and its data file, streamed."""

    spec: TaskSpec
    suite: Suite
    table: ItemTable = field(repr=False)
    #: ``--limit`` samples already drawn (the runner counts items, then streams them)
    _samples: dict[tuple[str, frozenset[str] | None, int, int], set[str]] = field(
        default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)

    @cached_property
    def task_type(self) -> TaskType:
        """The task's type, bound to its spec."""
        return tasks.for_spec(self.spec)

    def items(self, split: str = "test", varieties: list[str] | None = None,
              limit: int | None = None, *, seed: int = 0,
              sampling: str | None = "stratified",
              shard: tuple[int, int] | None = None) -> Iterator[Item]:
        """Stream items of a split, optionally only some varieties, and with ``limit`` at
        most that many groups: a seeded sample taking groups evenly from every stratum of
        the task type (labels, kinds of item), each group with all its varieties, so a
        limited run still compares varieties on the same groups. ``sampling=None`` is the
        toolkit 0.1.0 rule (the first ``limit`` items per variety in file order), kept so
        that old limited runs verify. ``shard=(i, n)`` keeps the groups of shard i of n (a
        stable hash of the group decides, so varieties stay paired in one shard)."""
        wanted = set(varieties) if varieties else None
        chosen = (self._sample_groups(split, wanted, limit, seed)
                  if limit is not None and sampling is not None else None)
        seen: Counter[str] = Counter()
        for item in self.table.items(split, chosen):
            if item["split"] != split or (wanted and item["variety"] not in wanted):
                continue
            if chosen is not None and item["group"] not in chosen:
                continue
            if shard is not None and shard_of(item["group"], shard[1]) != shard[0]:
                continue
            if limit is not None and chosen is None:
                if seen[item["variety"]] >= limit:
                    continue
                seen[item["variety"]] += 1
            yield item

    def _sample_groups(self, split: str, wanted: set[str] | None, limit: int,
                       seed: int) -> set[str]:
        key = (split, frozenset(wanted) if wanted else None, limit, seed)
        if key not in self._samples:
            self._samples[key] = self._draw_groups(split, wanted, limit, seed)
        return self._samples[key]

    def _draw_groups(self, split: str, wanted: set[str] | None, limit: int,
                     seed: int) -> set[str]:
        strata: dict[str, list[str]] = {}
        seen: set[str] = set()
        for item in self.table.items(split):
            if item["split"] != split or (wanted and item["variety"] not in wanted):
                continue
            if item["group"] not in seen:
                seen.add(item["group"])
                strata.setdefault(self.task_type.stratum(item), []).append(item["group"])
        rng = random.Random(f"{seed}|{self.name}|{split}")
        queues = [rng.sample(groups, len(groups)) for _, groups in sorted(strata.items())]
        rng.shuffle(queues)  # which strata get one more group when limit does not divide
        chosen: set[str] = set()
        while len(chosen) < limit and any(queues):
            for queue in queues:
                if queue and len(chosen) < limit:
                    chosen.add(queue.pop())
        return chosen

    def all_items(self) -> Iterator[Item]:
        """Every item of the data file, in file order."""
        return iter(self.table)

    def varieties(self, split: str = "test") -> list[str]:
        """Varieties present in a split, in registry order."""
        present = {row["variety"] for row in self.table.rows() if row["split"] == split}
        return [code for code in varieties.registry() if code in present]

    def column(self, name: str) -> list[JSONValue]:
        return self.table.column(name)

    @cached_property
    def context(self) -> str | None:
        """The text of the task's ``context_file`` (its sources), if it has one."""
        if not self.spec.context_file:
            return None
        where = f"{self.suite.path / 'tasks' / self.name}.yaml: context_file"
        path = confined(self.suite.path, self.spec.context_file, where)
        limit = (f"over the limit of {MAX_CONTEXT_CHARS:,} characters; keep the sources a "
                 "prompt needs")
        # a UTF-8 character is at most 4 bytes: refuse a huge file before reading it
        if path.is_file() and path.stat().st_size > 4 * MAX_CONTEXT_CHARS:
            raise SuiteError(f"{where}: {self.spec.context_file} is {limit}")
        text = read_text(path, "task context file")
        if len(text) > MAX_CONTEXT_CHARS:
            raise SuiteError(f"{where}: {self.spec.context_file} holds {len(text):,} "
                             f"characters, {limit}")
        return text


@dataclass
class Suite:
    """A validated suite. Build it with :func:`load_suite`."""

    path: Path
    spec: SuiteSpec
    card: CardSpec
    sha256: str
    tasks: dict[str, Task] = field(default_factory=dict)
    allow_unanonymized: bool = False  # the privacy gate's PII scan was skipped

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version

    @cached_property
    def ident(self) -> str:
        """``name@version+sha.<12 hex>``: the suite part of a signature."""
        return f"{self.name}@{self.version}+sha.{self.sha256[:12]}"

    def task(self, name: str) -> Task:
        if name not in self.tasks:
            raise ConfigError(
                f"suite '{self.name}' has no task '{name}'{did_you_mean(name, self.tasks)}. "
                f"Tasks: {', '.join(self.tasks)}"
            )
        return self.tasks[name]

    def iter_items(self) -> Iterator[tuple[str, Item]]:
        """(data file, item) for every item of every task (the privacy gate scans them)."""
        for task in self.tasks.values():
            for item in task.all_items():
                yield task.spec.data, item

    def text_files(self) -> Iterator[tuple[str, str]]:
        """(path, text) of every text file the tasks give models besides items (their
        ``context_file`` sources), each once."""
        for task in self.tasks.values():
            if task.spec.context_file:
                yield task.spec.context_file, task.context or ""

    def consent_ids(self) -> Iterator[tuple[str, str]]:
        """(consent id, item id) of every item."""
        for task in self.tasks.values():
            for row in task.table.rows():
                yield str(row["consent_id"]), str(row["id"])


# --------------------------------------------------------------------------- discovery


def suite_dirs() -> dict[str, Path]:
    """Shipped suites plus those under ``$MOROCCAN_EVAL_SUITES`` (``os.pathsep``-separated)."""
    roots = [shipped("suites")]
    roots += [Path(p) for p in os.environ.get("MOROCCAN_EVAL_SUITES", "").split(os.pathsep) if p]
    found: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for child in sorted(root.iterdir()):
                if (child / "suite.yaml").is_file():
                    found.setdefault(child.name, child)
    return found


def resolve_suite(name_or_path: str) -> Path:
    """A suite folder from a path or the name of a shipped suite."""
    path = Path(name_or_path)
    if (path / "suite.yaml").is_file():
        return path
    if path.name == "suite.yaml" and path.is_file():
        return path.parent
    known = suite_dirs()
    if name_or_path in known:
        return known[name_or_path]
    raise ConfigError(
        f"no suite named or found at '{name_or_path}'{did_you_mean(name_or_path, known)}. "
        f"Shipped suites: {', '.join(known) or 'none'}; or pass a folder holding suite.yaml"
    )


# --------------------------------------------------------------------------- loading


def load_suite(name_or_path: str | Path, *, load_data: bool = True,
               allow_unanonymized: bool = False) -> Suite:
    """Load and validate a suite, reporting every problem at once.

    Refuses: missing files, sha256 mismatches, a card without consent/anonymization/
    retention/validation fields, unknown varieties or task types, duplicate ids, malformed
    items; and, through the privacy gate, residual personal data (unless
    ``allow_unanonymized``, for a data owner's private runs: it is recorded in every
    manifest) and items whose consent is missing, withdrawn or expired.
    """
    root = resolve_suite(str(name_or_path))
    if escapes := [f"{root / name}: {p}" for name in ROOT_FILES
                   if (root / name).is_symlink() and (p := escape_problem(root, name))]:
        raise SuiteError(f"suite at {root} cannot be loaded", escapes)
    spec = _read_spec(root)
    problems = _check_seal(root, spec)
    problems += [f"{root / 'suite.yaml'}: {p}" for p in spec.placeholder_problems()]
    card = _read_card(root, problems)
    problems += _register_placeholders(root)
    task_specs = _read_task_specs(root, spec, problems)
    if problems or card is None:
        raise SuiteError(f"suite '{spec.name}' ({root}) cannot be loaded", problems)
    suite = Suite(path=root, spec=spec, card=card, sha256=sha256_file(root / "suite.yaml"),
                  allow_unanonymized=allow_unanonymized)
    if load_data:
        _load_items(suite, task_specs)
        _apply_privacy_gate(suite)
    return suite


def _read_spec(root: Path) -> SuiteSpec:
    path = root / "suite.yaml"
    try:
        return SuiteSpec.model_validate(load_yaml(path, "suite.yaml") or {})
    except ValidationError as exc:
        raise SuiteError(f"{path}: invalid", format_validation_errors(exc)) from None


def _check_seal(root: Path, spec: SuiteSpec) -> list[str]:
    """Every file listed in ``suite.yaml`` is there with its sha256; the reference
    variety is known."""
    problems: list[str] = []
    for rel, expected in spec.checksums.items():
        file = root / rel
        if escape := escape_problem(root, rel):
            problems.append(f"{root / 'suite.yaml'}: checksums: {escape}")
        elif not file.is_file():
            problems.append(f"{file}: listed in suite.yaml checksums but missing")
        elif (actual := sha256_file(file)) != expected:
            problems.append(
                f"{file}: sha256 mismatch (suite.yaml says {expected[:12]}…, file is "
                f"{actual[:12]}…); the file changed after the suite was sealed. If the change "
                f"is intended, run `moroccan-eval suites checksum {root} --write`"
            )
    if spec.reference_variety not in varieties.registry():
        hint = did_you_mean(spec.reference_variety, varieties.registry())
        problems.append(f"{root / 'suite.yaml'}: reference_variety: unknown variety "
                        f"'{spec.reference_variety}'{hint}")
    return problems


def _read_card(root: Path, problems: list[str]) -> CardSpec | None:
    try:
        return parse_card(root / "CARD.md")
    except (SuiteError, ConfigError) as exc:
        problems.append(str(exc))
        return None


def parse_card(path: Path) -> CardSpec:
    """Read ``CARD.md`` and validate its YAML front matter."""
    text = read_text(path, "suite card")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        raise SuiteError(
            f"{path}: the card must start with YAML front matter between '---' lines "
            "(sources, authors, consent, anonymization, retention, validation_status)"
        )
    try:
        data = parse_yaml(match.group(1), f"{path} (front matter)")
    except ConfigError as exc:
        raise SuiteError(str(exc)) from None
    try:
        return CardSpec.model_validate(data or {})
    except ValidationError as exc:
        raise SuiteError(f"{path}: card is incomplete", format_validation_errors(exc)) from None


def _read_task_specs(root: Path, spec: SuiteSpec, problems: list[str]) -> dict[str, TaskSpec]:
    found: dict[str, TaskSpec] = {}
    for name in spec.tasks:
        task_spec = _read_task_spec(root, spec, name, problems)
        if task_spec is not None:
            found[name] = task_spec
    return found


def _read_task_spec(root: Path, spec: SuiteSpec, name: str,
                    problems: list[str]) -> TaskSpec | None:
    """One task file, validated and checked by its task type; its metrics default to
    the type's own, so the manifest records them explicitly."""
    rel = f"tasks/{name}.yaml"
    path = root / rel
    if rel not in spec.checksums:
        problems.append(f"{root / 'suite.yaml'}: checksums: add an entry for {rel}")
    if not path.is_file():
        problems.append(f"{path}: task file missing")
        return None
    try:
        task_spec = TaskSpec.model_validate(load_yaml(path, "task file") or {})
    except ValidationError as exc:
        problems += [f"{path}: {p}" for p in format_validation_errors(exc)]
        return None
    except ConfigError as exc:
        problems.append(str(exc))
        return None
    if "parser" in task_spec.model_fields_set:
        warnings.warn(f"{path}: 'parser' is deprecated and ignored (the task type "
                      f"'{task_spec.type}' chooses its parser); remove it when you next "
                      "edit the file", MoroccanEvalWarning, stacklevel=2)
    if task_spec.name != name:
        problems.append(f"{path}: name: '{task_spec.name}' differs from file name")
    escapes = [f"{path}: {key}: {p}" for key in TASK_FILE_FIELDS
               if (rel := getattr(task_spec, key)) and (p := escape_problem(root, rel))]
    if escapes:
        problems += escapes
        return None  # never read a file outside the suite, not even to check it
    for listed in (task_spec.data, task_spec.context_file):
        if listed and listed not in spec.checksums:
            problems.append(f"{root / 'suite.yaml'}: checksums: add an entry for {listed}")
    try:
        task_type = tasks.for_spec(task_spec)
    except ConfigError as exc:
        problems.append(f"{path}: type: {exc}")
        return None
    problems += [f"{path}: {p}" for p in check_task(task_spec, task_type)]
    task_spec.metrics = task_type.selected_metrics()
    return task_spec


def _load_items(suite: Suite, task_specs: dict[str, TaskSpec]) -> None:
    # Checking every item is most of a warm start-up: a sealed suite that passed is not
    # checked again until its files, the checking code or the variety registry change.
    task_type_files = sorted({inspect.getfile(type(tasks.for_spec(task_spec)))
                              for task_spec in task_specs.values()})  # plugins' too
    verdict: JSONValue = [suite.sha256, __version__,
                          code_fingerprint("suites", "tasks", "prompts.py", *task_type_files),
                          {code: v.model_dump(mode="json")
                           for code, v in varieties.registry().items()}]
    if verdicts.passed("items", verdict):
        for name, task_spec in task_specs.items():
            suite.tasks[name] = Task(spec=task_spec, suite=suite,
                                     table=ItemTable(suite.path / task_spec.data))
        return
    problems: list[str] = []
    for name, task_spec in task_specs.items():
        path = suite.path / task_spec.data
        # Arrow never sees a file that fails the pre-pass: it would raise a decoding
        # traceback, coerce types silently, or pass a 50 MB text on to the privacy gate
        if shape := check_item_lines(path, task_spec.input_fields):
            problems += shape
            continue
        task = Task(spec=task_spec, suite=suite, table=ItemTable(path))
        firsts: dict[str, Item] = {}  # the first item of each variety, read on the way
        item_problems = check_items(path, _noting_firsts(task.all_items(), firsts),
                                    task.task_type, suite.path)
        problems += item_problems
        if not item_problems:
            problems += _template_problems(task, firsts)
        suite.tasks[name] = task
    if problems:
        raise SuiteError(f"suite '{suite.name}' ({suite.path}) has invalid items", problems)
    verdicts.remember_pass("items", verdict)


def shard_of(group: str, shards: int) -> int:
    """The shard (of ``shards``) a group belongs to: a hash, the same on every machine."""
    digest = hashlib.sha256(group.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def _noting_firsts(items: Iterator[Item], firsts: dict[str, Item]) -> Iterator[Item]:
    for item in items:
        firsts.setdefault(item["variety"], item)
        yield item


def _template_problems(task: Task, firsts: dict[str, Item]) -> list[str]:
    """Render the task's prompt templates once, on the first item (``firsts``) of each
    variety that has its own templates (and of the default ones), so a broken or hostile
    template fails at load time, not in the middle of a run."""
    from ..prompts import PromptRenderer

    overridden = set(task.spec.prompt.by_variety)
    default = next((v for v in firsts if v not in overridden), None)
    chosen = [firsts[v] for v in firsts if v in overridden or v == default]
    try:
        renderer = PromptRenderer(task.spec, context=task.context)
        for item in chosen:
            renderer.render(item)
    except MoroccanEvalError as exc:  # a bad template, or a context file too long to use
        return [str(exc)]
    return []


def _apply_privacy_gate(suite: Suite) -> None:
    from ..privacy.gate import gate_problems

    problems = gate_problems(suite, allow_unanonymized=suite.allow_unanonymized)
    if problems:
        raise SuiteError(f"suite '{suite.name}' ({suite.path}) fails the privacy gate", problems)


def _register_placeholders(root: Path) -> list[str]:
    """``TODO`` left in the consent register's ``source`` fields (the import skeleton's);
    an unreadable register is the privacy gate's to report."""
    from ..privacy.consent import REGISTER, REGISTER_CSV, load_register

    try:
        register = load_register(root)
    except MoroccanEvalError:
        return []
    if register is None:
        return []
    name = REGISTER if (root / REGISTER).is_file() else REGISTER_CSV
    return [f"{root / name}: consents[{i}].source: {problem}"
            for i, consent in enumerate(register.consents, 1)
            if (problem := placeholder_problem(consent.source))]
