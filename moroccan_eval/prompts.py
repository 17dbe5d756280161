"""Prompt rendering: sandboxed Jinja2 with StrictUndefined, per-variety templates,
seeded few-shot examples from the ``train`` split.

Template variables: every field of the item (``{{ text }}``), its ``meta`` (e.g.
``{{ meta.amazigh_variety }}``, the dialect a translation targets), ``labels`` (list of names),
``label_descriptions`` (name → description), ``variety`` (code), ``examples`` (list of
``{"fields", "reference"}`` for k-shot prompts), ``context`` (the task's sources) and
``canary`` (the security suite's secret, see :mod:`moroccan_eval.canary`).

An item whose ``fields.history`` is a list of ``{"role", "content"}`` turns is a
conversation: those turns go between the system prompt and the rendered user message.

Templates come with suites, and suites come from anyone: they render in
:class:`BoundedEnvironment`, where integers, strings, lists, ``range``, loops, time and
the rendered message are all bounded (the ``MAX_*`` constants), and any error a template
raises becomes one :class:`~moroccan_eval.errors.ConfigError` naming the task file.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

from jinja2 import StrictUndefined, Template, TemplateError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field

from .canary import CANARY_PLACEHOLDER
from .errors import ConfigError
from .io import JSONValue, load_model_yaml
from .resources import shipped
from .suites.schema import Item, TaskSpec


class Literals(BaseModel):
    """``suites/literals.yaml``: short words templates need in each variety
    (``{{ literals.question }}``) and ways of saying "the sources do not say", which QA
    tasks count as a refusal in any variety."""

    model_config = ConfigDict(extra="forbid")
    literals: dict[str, dict[str, str]] = Field(default_factory=dict)
    refusals: list[str] = Field(default_factory=list)


@cache
def literals() -> Literals:
    """The shipped prompt literals and refusal phrases."""
    return load_model_yaml(Literals, shipped("suites", "literals.yaml"), "literals file")


Message = dict[str, str]

# --------------------------------------------------------------------------- limits
#
# Templates come with suites, and suites come from anyone: rendering one must neither
# hang nor exhaust memory. Jinja2's sandbox stops attribute escapes, not arithmetic or
# repetition, so every operation that can grow a value is bounded here, and checked
# *before* it runs when running it is the danger (``9 ** 99999999`` never returns).

#: Characters of one rendered message (system or user prompt).
MAX_PROMPT_CHARS = 1_000_000
#: Characters (or elements) of any string or list a template builds.
MAX_VALUE_LEN = MAX_PROMPT_CHARS
#: Bits of any integer a template computes (about 3,000 digits).
MAX_INT_BITS = 10_000
#: Elements of one ``range(...)``.
MAX_RANGE = 10_000
#: Loop iterations of one rendering, all loops together (a prompt loops over labels and
#: few-shot examples: dozens).
MAX_LOOP_ITERATIONS = 200_000
#: Seconds one rendering may take, a backstop for what the counts above miss.
MAX_RENDER_SECONDS = 5.0

_HUGE_WIDTH = re.compile(r"\d{7,}")  # a field width of millions in a format string


class TemplateLimitError(SecurityError):
    """A template tried to build something over one of the limits above."""


@dataclass
class _Budget:
    iterations: int = MAX_LOOP_ITERATIONS
    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_RENDER_SECONDS)

    def tick(self, n: int = 1) -> None:
        self.iterations -= n
        if self.iterations < 0:
            raise TemplateLimitError(f"loops ran over {MAX_LOOP_ITERATIONS:,} iterations")
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(f"rendering took over {MAX_RENDER_SECONDS:g} s")


_BUDGET: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _tick(n: int = 1) -> None:
    if (budget := _BUDGET.get()) is not None:
        budget.tick(n)


def _too_large(what: str) -> TemplateLimitError:
    return TemplateLimitError(f"{what} is too large for a prompt template (limits: "
                              f"{MAX_VALUE_LEN:,} characters or elements, "
                              f"{MAX_INT_BITS:,}-bit integers)")


def _prompt_too_long() -> TemplateLimitError:
    return TemplateLimitError(f"the rendered prompt is over {MAX_PROMPT_CHARS:,} characters")


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _check_value(value: Any, what: str = "a value") -> Any:
    """``value`` if it is within the limits, else :class:`TemplateLimitError`."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise _too_large(f"{what} (an integer of {value.bit_length():,} bits)")
    elif (isinstance(value, str | bytes | list | tuple | dict | set | frozenset)
          and len(value) > MAX_VALUE_LEN):
        raise _too_large(f"{what} ({len(value):,} long)")
    return value


def _check_count(n: Any, what: str) -> None:
    """A number of repetitions, a width or a length given to an operation that allocates
    that much."""
    if isinstance(n, int | float) and not isinstance(n, bool) and abs(n) > MAX_VALUE_LEN:
        raise _too_large(f"{what} of {n:.3g}")


def _check_format(fmt: Any) -> None:
    if isinstance(fmt, str) and _HUGE_WIDTH.search(fmt):
        raise _too_large("a field width in a format string")


def _joined_length(items: Any, sep: Any) -> int:
    if not isinstance(items, list | tuple):
        return 0
    return sum(len(x) for x in items if isinstance(x, str)) + len(str(sep)) * len(items)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be over the limits, before computing it."""
    if operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1 and _int_bits(left) * right > MAX_INT_BITS + 64:
            raise _too_large(f"{left} ** {right}")
    elif operator == "*":
        if (isinstance(left, int) and isinstance(right, int)
                and _int_bits(left) + _int_bits(right) > MAX_INT_BITS + 1):
            raise _too_large("an integer product")
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(n, int):
                _check_count(len(seq) * n, "a repetition")
    elif operator == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            _check_count(len(left) + len(right), "a concatenation")
    elif operator == "%" and isinstance(left, str):
        _check_format(left)
        for arg in right if isinstance(right, tuple) else (right,):
            _check_count(arg, "a formatting argument")


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call that would allocate over the limits: huge numeric arguments
    (``'a'.center(10**9)``), huge format widths, joins and replacements that multiply."""
    if obj is _bounded_range:
        return  # it checks its own bounds, with a message that says so
    for arg in (*args, *kwargs.values()):
        _check_count(arg, "a numeric argument")
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str):
        if name in ("format", "format_map"):
            _check_format(owner)
        elif name == "join" and args:
            _check_count(_joined_length(args[0], owner), "a joined string")
        elif name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
            old, new = args[0], args[1]
            count = owner.count(old) if old else len(owner) + 1
            _check_count(len(owner) + count * (len(new) - len(old)), "a replacement")


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter with its arguments and result checked (``|center(10**9)``,
    ``|format``, ``|join``, ``|sum``)."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        value, rest = (args[skip], args[skip + 1:]) if len(args) > skip else (None, ())
        for arg in (*rest, *kwargs.values()):
            _check_count(arg, f"an argument of |{name}")
        if name == "format":
            _check_format(value)
        elif name == "join":
            _check_count(_joined_length(value, rest[0] if rest else ""), "a joined string")
        elif name == "sum" and isinstance(value, list | tuple):
            _check_count(sum(len(v) for v in value if isinstance(v, str | list | tuple)),
                         "a sum of sequences")
        return _check_value(func(*args, **kwargs), f"the result of |{name}")

    return bounded


def _bounded_range(*args: Any) -> range:
    """``range`` of at most :data:`MAX_RANGE` elements."""
    for arg in args:
        _check_count(arg, "a range bound")
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateLimitError(f"range(...) of {len(rng):,} elements is over the limit of "
                                 f"{MAX_RANGE:,}")
    return rng


def _bounded_iter(iterable: Any) -> Iterator[Any]:
    """What a ``{% for %}`` loop iterates: counted against the rendering's budget."""
    for value in iterable:
        _tick()
        yield value


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``~`` and ``{% for %}`` through the environment, so they are bounded too."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        wrapped = (isinstance(node.iter, nodes.Call)
                   and isinstance(node.iter.node, nodes.EnvironmentAttribute))
        if not wrapped:
            node.iter = nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [node.iter],
                                   [], None, None, lineno=node.iter.lineno)
        super().visit_For(node, frame)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's sandbox (no attribute escapes, no mutation of lists and dicts) with every
    way of growing a value or looping bounded: see the ``MAX_*`` limits of this module."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//", "/", "-"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, keep_trailing_newline=False,
                         autoescape=False)
        self.globals["range"] = _bounded_range
        del self.globals["lipsum"]  # lipsum(n=10**6) writes ~500 MB; no prompt needs it
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}
        self.bounded_iter = _bounded_iter

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        return _check_value(super().call_binop(context, operator, left, right),
                            f"the result of {operator}")

    def call(__self, __context: Context, __obj: Any,  # jinja2's signature: __ avoids clashes
             *args: Any, **kwargs: Any) -> Any:
        _tick()
        _check_call(__obj, args, kwargs)
        return _check_value(super().call(__context, __obj, *args, **kwargs),
                            "the result of a call")

    def bounded_concat(self, values: Iterable[Any]) -> str:
        """``a ~ b``: the pieces joined, refused when the result would be over the limit."""
        _tick()
        pieces = [str(v) for v in values]
        _check_count(sum(map(len, pieces)), "a ~ concatenation")
        return "".join(pieces)


def render_bounded(template: Template, context: dict[str, Any]) -> str:
    """Render ``template`` within the limits of this module: a budget of loop iterations
    and time per rendering, and at most :data:`MAX_PROMPT_CHARS` of output (streamed, so
    an over-long prompt is refused before it is built)."""
    token = _BUDGET.set(_Budget())
    try:
        size, parts = 0, []
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_PROMPT_CHARS:
                raise _prompt_too_long()
            parts.append(chunk)
        return "".join(parts)
    finally:
        _BUDGET.reset(token)


_ENV = BoundedEnvironment()


class PromptRenderer:
    """Compiles a task's templates once; renders chat messages per item."""

    def __init__(self, spec: TaskSpec, train: list[Item] | None = None, seed: int = 0,
                 context: str | None = None):
        self.spec = spec
        self.seed = seed
        self.context = context
        self.literals = literals().literals
        self._templates: dict[str, _Templates] = {}
        self._where = f"tasks/{spec.name}.yaml: prompt of task '{spec.name}'"
        # by source: variety overrides often change one message and share the other
        self._parts: dict[str, _PartTemplate] = {}
        # with no few-shot examples, ``examples`` is [] for every item (the shipped tasks'
        # ``{% for ex in examples %}`` loops then render once per variety)
        self._per_variety = (_PER_VARIETY | {"examples"} if spec.few_shot == 0 or not train
                             else _PER_VARIETY)
        try:
            self._default = self._compile(spec.prompt.system, spec.prompt.user)
            for code, override in spec.prompt.by_variety.items():
                self._templates[code] = self._compile(
                    override.get("system", spec.prompt.system),
                    override.get("user", spec.prompt.user),
                )
        except TemplateError as exc:
            raise ConfigError(f"{self._where}: template error: {exc}") from None
        except (RecursionError, MemoryError):
            raise ConfigError(f"{self._where}: template too complex to compile") from None
        self._by_variety: dict[str, list[Item]] = defaultdict(list)
        for item in train or []:
            self._by_variety[item["variety"]].append(item)
        #: whether the same inputs always render the same messages (``|random`` is the
        #: one source of chance a template has: ``lipsum`` is removed)
        self.deterministic = not any(part.uses_random for part in self._parts.values())
        self._static = {
            "labels": list(spec.labels),
            "label_descriptions": {k: v.description for k, v in spec.labels.items()},
        }

    def _compile(self, system: str | None, user: str) -> _Templates:
        return _Templates(self._part(system) if system else None, self._part(user))

    def _part(self, source: str) -> _PartTemplate:
        part = self._parts.get(source)
        if part is None:
            part = self._parts[source] = _PartTemplate(source, self._per_variety)
        return part

    def examples(self, item: Item) -> list[dict[str, JSONValue]]:
        """``few_shot`` train examples of the item's variety, chosen by a seeded RNG that
        depends on the item id only: adding items does not change others' prompts."""
        k = self.spec.few_shot
        pool = self._by_variety.get(item["variety"], [])
        if k == 0 or not pool:
            return []
        digest = hashlib.sha256(f"{self.seed}:{item['id']}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        chosen = rng.sample(pool, min(k, len(pool)))
        return [{"fields": ex["fields"], "reference": ex["reference"]} for ex in chosen]

    def render(self, item: Item) -> list[Message]:
        """Chat messages for one item."""
        templates = self._templates.get(item["variety"], self._default)
        context = {
            **self._static,
            **item["fields"],
            "variety": item["variety"],
            "meta": item.get("meta") or {},
            "examples": self.examples(item),
            "context": self.context or "",
            "canary": CANARY_PLACEHOLDER,
            "literals": self.literals.get(item["variety"], self.literals.get("eng_Latn", {})),
        }
        try:
            messages = []
            if templates.system is not None:
                messages.append({"role": "system",
                                 "content": templates.system.render(item, context)})
            messages += _history(item)
            messages.append({"role": "user",
                             "content": templates.user.render(item, context)})
        except Exception as exc:  # a template is the suite's code: whatever it
            # raises (1/0, a recursive macro, an undefined name) is the suite's error
            variety = (f" ({item['variety']} template)" if item["variety"] in self._templates
                       else "")
            detail = str(exc) or type(exc).__name__
            if not isinstance(exc, TemplateError):
                detail = f"{type(exc).__name__}: {detail}"
            raise ConfigError(f"{self._where}{variety} cannot be rendered for item "
                              f"{str(item['id'])[:80]!r}: {detail[:300]}") from None
        return messages


def _uses_random(ast: nodes.Node) -> bool:
    """Whether a template (or a part of one) applies ``|random`` (also as a
    ``{% filter %}`` block)."""
    return any(f.name == "random" for f in ast.find_all(nodes.Filter))


#: Context names whose values are the same for every item of one variety.
_PER_VARIETY = frozenset({"labels", "label_descriptions", "variety", "context", "canary",
                          "literals"})


class _PartTemplate:
    """A template and, per variety, the same template with its top-level statements and
    outputs that read only per-variety values (a system message, the list of labels and
    their descriptions) rendered once into plain text: most of a prompt is then not
    re-rendered for every item. Such a part reads none of the item's values, and nothing in
    the template binds a name that could change what it reads, so rendering it apart gives
    the text it gives in place.

    What is left is often text around the item's fields (``Message: {{ text }}``): that is
    filled in without Jinja when every field it names is a string, as Jinja would print it.

    ``per_variety``: the context names whose values are the same for every item of one
    variety."""

    def __init__(self, source: str, per_variety: frozenset[str] = _PER_VARIETY):
        self._source = source
        ast = _ENV.parse(source)
        self.uses_random = _uses_random(ast)
        self._constant: list[int] = []
        names: set[str] = set()
        # a {% set %} (even inside an {% if %}) may rebind a name later parts read
        for i, node in enumerate([] if any(ast.find_all(_STATEFUL)) else ast.body):
            if isinstance(node, nodes.Output) and all(
                    isinstance(child, nodes.TemplateData) for child in node.nodes):
                continue  # already text
            read = frozenset(meta.find_undeclared_variables(_ast([node])))
            if (isinstance(node, nodes.Output | nodes.For | nodes.If) and read <= per_variety
                    and not _uses_random(node)):
                self._constant.append(i)
                names |= read
        self._names = frozenset(names)
        self._by_variety: dict[str, _Body] = {}
        #: the per-variety parts, each compiled once for every variety
        self._compiled_constants: list[Template] | None = None
        # last: compiling may change the nodes it is given (the analysis above read them)
        self.whole = _Body(ast.body)

    def render(self, item: Item, context: dict[str, Any]) -> str:
        """The item's message (``context``: the item's rendering context)."""
        if not self._constant or self._names & item["fields"].keys():
            body = self.whole
        else:
            body = (self._by_variety.get(item["variety"])
                    or self._for_variety(item["variety"], context))
        if body.plan is not None and (text := _fill(body.plan, context)) is not None:
            return text
        return render_bounded(body.compiled(), context)

    def _for_variety(self, variety: str, context: dict[str, Any]) -> _Body:
        body = _ENV.parse(self._source).body  # fresh nodes: compiling may change them
        if self._compiled_constants is None:  # once, from the first variety's nodes
            self._compiled_constants = [_ENV.from_string(_ast([body[i]]))
                                        for i in self._constant]
        for i, template in zip(self._constant, self._compiled_constants, strict=True):
            text = render_bounded(template, context)
            body[i] = nodes.Output([nodes.TemplateData(text, lineno=body[i].lineno)],
                                   lineno=body[i].lineno)
        self._by_variety[variety] = found = _Body(body)
        return found


class _Body:
    """A template body, compiled once: a body its :data:`_Plan` fills in only on first
    need (an item's field is a value Jinja must print itself: a number, ``None``); any
    other at once, so that a compile error (an unknown filter) is reported when the task is
    set up."""

    def __init__(self, body: list[nodes.Node]):
        self._body = body
        self.plan = _plan(body)
        self._template: Template | None = None
        if self.plan is None:
            self.compiled()

    def compiled(self) -> Template:
        if self._template is None:
            self._template = _ENV.from_string(_ast(self._body))
        return self._template


#: A template that only prints text and names: (text, None) or ("", name) in order.
_Plan = list[tuple[str, str | None]]


def _plan(body: list[nodes.Node]) -> _Plan | None:
    """The :data:`_Plan` of a template body, ``None`` when it does anything else."""
    plan: _Plan = []
    for node in body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                plan.append((child.data, None))
            elif isinstance(child, nodes.Name) and child.ctx == "load":
                plan.append(("", child.name))
            else:
                return None
    return plan


def _fill(plan: _Plan, context: dict[str, Any]) -> str | None:
    """The text a :data:`_Plan` renders; ``None`` when a name is not a string of the
    context (Jinja then decides: a global, a number's formatting, an undefined name)."""
    parts = []
    for text, name in plan:
        if name is None:
            parts.append(text)
        else:
            value = context.get(name)
            if type(value) is not str:
                return None
            parts.append(value)
    rendered = "".join(parts)
    if len(rendered) > MAX_PROMPT_CHARS:
        raise _prompt_too_long()
    return rendered


#: Nodes that define or bind names, or bring in other templates: a template holding one
#: is rendered whole for each item.
_STATEFUL = (nodes.Assign, nodes.AssignBlock, nodes.Macro, nodes.CallBlock, nodes.Import,
             nodes.FromImport, nodes.Include, nodes.Extends, nodes.Block, nodes.Scope,
             nodes.OverlayScope, nodes.ScopedEvalContextModifier)


def _ast(body: list[nodes.Node]) -> nodes.Template:
    template = nodes.Template(body, lineno=1)
    template.set_environment(_ENV)
    return template


class _Templates(NamedTuple):
    system: _PartTemplate | None
    user: _PartTemplate


def _history(item: Item) -> list[Message]:
    """Earlier turns of a conversation item, as chat messages."""
    turns = item["fields"].get("history")
    if not isinstance(turns, list):
        return []
    return [{"role": str(turn["role"]), "content": str(turn["content"])} for turn in turns
            if isinstance(turn, dict) and turn.get("role") in ("user", "assistant")]
