"""Property tests (hypothesis): whatever a suite file, a template or a model's answer
holds — random bytes, invalid UTF-8, bidi controls, zero-width characters, NULs, huge
numbers — every reader and parser gives a correct result or one clean
:class:`MoroccanEvalError`, never another exception (issue "Trust")."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, bound_type
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from moroccan_eval.errors import MoroccanEvalError
from moroccan_eval.io import canonical_json, iter_jsonl, json_line, parse_json_line, parse_yaml
from moroccan_eval.prompts import PromptRenderer
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.schema import PromptSpec, TaskSpec
from moroccan_eval.suites.seal import write_checksums
from moroccan_eval.text.normalize import normalize, strip_latin_accents, tokenize
from moroccan_eval.text.translit import arabic_to_arabizi, arabizi_to_arabic
from moroccan_eval.text.values import comparable, normalize_value, stated_facts

#: Examples per property: the defaults keep this file under 30 s; set
#: MOROCCAN_EVAL_PROPERTY_SCALE=20 for a deep search before a release.
SCALE = int(os.environ.get("MOROCCAN_EVAL_PROPERTY_SCALE", "1"))
FAST = settings(max_examples=60 * SCALE, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=15 * SCALE, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# --------------------------------------------------------------------------- strategies

#: Characters that break naive text handling: bidi controls and isolates, zero-width
#: characters, BOM, NUL and other controls, line/paragraph separators, Arabic-Indic
#: digits, Tifinagh, combining marks, lone surrogates, astral characters.
NASTY = ("\u202e\u202d\u202a\u202b\u202c\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
         "\u200b\u200c\u200d\u2060\ufeff\x00\x01\x1b\x7f\r\n\t\u2028\u2029\x85"
         "٠١٢٣٤٥٦٧٨٩۰۱۲ⵜⴰⵎⴰⵣⵉⵖⵜ\u064b\u0651\u0640ـ\u0301\u0300ﷺ𝟘🙂\ud800\udfff"
         "أإآابتثجحخدذرزسشصضطظعغفقكلمنهويىةءئؤ3795é"
         "{}[]\"':,.;\\/-+*%$#@!?<>|`~=_ hH")

nasty_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(NASTY), max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
)
huge_number = st.one_of(
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(2 ** 64), st.just(-(2 ** 63) - 1), st.just(10 ** 308), st.just(1e308),
)
number_text = st.one_of(huge_number.map(str), st.from_regex(r"[0-9]{300,5000}", fullmatch=True),
                        st.from_regex(r"1e[0-9]{3,6}", fullmatch=True))
json_value = st.recursive(
    st.none() | st.booleans() | huge_number | nasty_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(nasty_text, children, max_size=4),
    max_leaves=12,
)
#: What a model may answer: plain text, JSON (fenced or not), numbers, nasty mixes.
model_output = st.one_of(
    nasty_text,
    number_text,
    json_value.map(lambda v: json.dumps(v, ensure_ascii=False)),
    json_value.map(lambda v: f"Here you go:\n```json\n{json.dumps(v)}\n```\nthanks"),
    st.builds(lambda a, b: f"{a}{{{b}", nasty_text, nasty_text),
    st.just('{"a": ' + "[" * 5000 + "]" * 5000 + "}"),
    st.just('{"amount": 1' + "0" * 5000 + "}"),
    st.just('{"amount": 1e999, "date": "31/02/99999"}'),
)


# --------------------------------------------------------------------------- JSONL reader


raw_line = st.one_of(
    st.binary(max_size=200),
    json_value.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.dictionaries(nasty_text, json_value, max_size=5).map(
        lambda d: json.dumps(d).encode()),
    st.sampled_from([b"\xff\xfe{}", b'{"a": "\xc3"}', b"[" * 3000, b'{"a": NaN}',
                     b'{"a": 1' + b"0" * 5000 + b"}", b'{"a": 1, "a": 2}', b"\x00",
                     b'{"a": "\\ud800"}', b"\r", b"{}\r"]),
)


@FAST
@given(st.lists(raw_line, max_size=8))
def test_jsonl_reader_yields_objects_or_one_clean_error(tmp_path_factory: pytest.TempPathFactory,
                                                        lines: list[bytes]) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "data.jsonl"
    data = b"\n".join(lines)
    path.write_bytes(data)
    try:
        for lineno, obj in iter_jsonl(path):
            assert isinstance(obj, dict) and 1 <= lineno <= data.count(b"\n") + 1
    except MoroccanEvalError as exc:
        assert str(path) in str(exc)
    errors: list[str] = []
    read = list(iter_jsonl(path, errors=errors, max_line_bytes=100))
    assert all(isinstance(obj, dict) for _, obj in read)
    assert all(e.startswith(f"{path}:") for e in errors)


def _as_json_reads_it(raw: bytes) -> object:
    """What the standard library reads from a line: an object, ``None`` (blank), or
    ``"refused"``."""
    try:
        text = raw.decode("utf-8")
        if not text.strip():
            return None
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return "refused"
    return obj if isinstance(obj, dict) else "refused"


@FAST
@given(raw_line)
def test_a_line_is_read_as_the_json_module_reads_it(raw: bytes) -> None:
    # the reader parses with pydantic's faster parser and falls back on json where that
    # one refuses (a lone surrogate escape, a 5,000-digit number): together they must
    # read exactly what json alone reads, NaN, -0.0, key order and repeated keys included
    try:
        read: object = parse_json_line(raw)
    except ValueError:
        read = "refused"
    assert repr(read) == repr(_as_json_reads_it(raw))


@FAST
@given(st.dictionaries(nasty_text, json_value, max_size=6))
def test_a_record_written_as_a_json_line_reads_back_as_json_writes_it(
        record: dict[str, Any]) -> None:
    line = json_line(record)
    assert "\n" not in line
    assert repr(json.loads(line)) == repr(json.loads(json.dumps(record, ensure_ascii=False)))


@FAST
@given(st.one_of(json_value, st.floats(), st.lists(st.floats()), st.dictionaries(
    st.one_of(st.integers(), st.booleans(), st.floats(), st.none()), json_value, max_size=3),
    st.lists(st.one_of(json_value, st.tuples(st.integers()), st.binary(max_size=3),
                       st.sets(st.integers(), max_size=2)), max_size=3)))
def test_canonical_json_is_json_s_own_spelling_byte_for_byte(value: Any) -> None:
    # hashes (the response cache's keys, suites' and runs' signatures) are made of it: the
    # encoder made once must write what json.dumps writes, or raise what it raises
    def outcome(encode: Callable[[Any], str]) -> str:
        try:
            return encode(value)
        except (TypeError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"

    assert outcome(canonical_json) == outcome(lambda v: json.dumps(
        v, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def test_canonical_json_names_a_cycle_as_json_does() -> None:
    looped: dict[str, Any] = {"a": [1]}
    looped["a"].append(looped)
    with pytest.raises(ValueError, match="Circular reference detected"):
        canonical_json(looped)
    assert canonical_json({"a": [1]}) == '{"a":[1]}'  # and the next object is encoded


def test_a_byte_order_mark_is_read_past_or_named(tmp_path: Path) -> None:
    """Windows editors and spreadsheets start UTF-8 files with a byte-order mark: a JSON-lines
    file read leniently (a file to scan or import) reads past it; read strictly (a suite's
    data) it is named with what to do."""
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "salam"}\r\n{"text": "bonjour"}\r\n')
    assert [obj["text"] for _, obj in iter_jsonl(path)] == ["salam", "bonjour"]
    with pytest.raises(MoroccanEvalError, match=r"bom\.jsonl:1: starts with a UTF-8 byte-order "
                                                "mark; save the file as UTF-8 without one"):
        list(iter_jsonl(path, strict=True))
    errors: list[str] = []
    assert len(list(iter_jsonl(path, strict=True, errors=errors))) == 2 and len(errors) == 1


@FAST
@given(nasty_text)
def test_yaml_parser_gives_data_or_one_clean_error(text: str) -> None:
    try:
        parse_yaml(text, "f.yaml")
    except MoroccanEvalError as exc:
        assert str(exc).startswith("f.yaml")


# --------------------------------------------------------------------------- suite loader


@contextmanager
def mini_copy() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mini"
        shutil.copytree(FIXTURES / "suites" / "mini", root)
        yield root


VALID = json.loads((FIXTURES / "suites" / "mini" / "data" / "intents.jsonl")
                   .read_text(encoding="utf-8").splitlines()[0])
item_keys = st.sampled_from([*VALID, "extra", ""])
mutated_item = st.builds(
    lambda updates, dropped: json.dumps(
        {**{k: v for k, v in VALID.items() if k not in dropped}, **updates},
        ensure_ascii=False).encode("utf-8", "surrogatepass"),
    st.dictionaries(item_keys, json_value, max_size=3),
    st.sets(item_keys, max_size=2),
)
fields_mutation = st.builds(
    lambda fields: json.dumps({**VALID, "id": "z-1", "group": "z",
                               "fields": fields}).encode(),
    st.dictionaries(st.sampled_from(["text", "audio", "history", "labels", "x"]),
                    json_value, max_size=3),
)


@SLOW
@given(st.lists(st.one_of(raw_line, mutated_item, fields_mutation), min_size=1, max_size=3),
       st.integers(min_value=0, max_value=20))
def test_suite_loader_loads_or_gives_one_clean_error(lines: list[bytes], at: int) -> None:
    with mini_copy() as root:
        path = root / "data" / "intents.jsonl"
        existing = path.read_bytes().splitlines()
        path.write_bytes(b"\n".join(existing[:at] + lines + existing[at:]) + b"\n")
        write_checksums(root)
        try:
            suite = load_suite(root, allow_unanonymized=True)
        except MoroccanEvalError as exc:
            assert "Traceback" not in str(exc)
            return
        task = suite.tasks["intents"]
        renderer = PromptRenderer(task.spec)
        for item in task.all_items():
            assert all(isinstance(item[k], str) for k in ("id", "group", "split", "variety"))
            canonical_json(item).encode("utf-8")  # hashable as request content
            with suppress(MoroccanEvalError):
                renderer.render(item)


# --------------------------------------------------------------------------- templates

atom = st.one_of(
    st.sampled_from(["text", "variety", "labels", "'ab'", "[1, 2]", "range(3)", "9", "2.5",
                     "10**6", "10**9", "9 ** 99999", "'%0999999d'", "'{:>9999999}'", "none",
                     "label_descriptions", "literals", "context", "examples", "canary"]),
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str),
)
binop = st.sampled_from(["*", "**", "+", "-", "%", "//", "/", "~", "==", "in", "and"])
filt = st.sampled_from(["upper", "length", "list", "center(10**9)", "format(1)", "join('x')",
                        "replace('a', 'aa')", "sum", "string", "first", "int", "trim",
                        "indent(999999999)", "wordwrap(3)", "batch(10**9)", "slice(10**8)",
                        "truncate(5)", "unique", "reverse", "tojson", "dictsort",
                        "attr('__class__')", "map('upper')"])


@st.composite
def expression(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        expr = draw(atom)
    else:
        expr = f"({draw(expression(depth + 1))} {draw(binop)} {draw(expression(depth + 1))})"
    if draw(st.integers(0, 3)) == 0:
        expr = f"{expr}|{draw(filt)}"
    if draw(st.integers(0, 5)) == 0:
        expr = f"{expr}.{draw(st.sampled_from(['center', 'zfill', 'ljust']))}(10**8)"
    return expr


@st.composite
def template(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 4))
        expr = draw(expression())
        if kind == 0:
            parts.append(f"{{% for x in {expr} %}}{{{{ x }}}}{{% endfor %}}")
        elif kind == 1:
            parts.append(f"{{% set ns = namespace(v={expr}) %}}{{% for i in range(50) %}}"
                         f"{{% set ns.v = ns.v {draw(binop)} ns.v %}}{{% endfor %}}{{{{ ns.v }}}}")
        elif kind == 2:
            parts.append(draw(nasty_text).replace("{", "(").replace("%", "pct"))
        else:
            parts.append(f"{{{{ {expr} }}}}")
    return "".join(parts)


def _spec(user: str) -> TaskSpec:
    return TaskSpec(name="t", type="classification", description="d", data="data/t.jsonl",
                    input_fields=["text"], prompt=PromptSpec(user=user),
                    labels={"a": {"description": "x"}, "b": {}})


@FAST
@given(template(), nasty_text)
def test_any_template_renders_or_gives_one_clean_error(source: str, text: str) -> None:
    item = {**VALID, "fields": {"text": text}}
    try:
        messages = PromptRenderer(_spec(source)).render(item)  # type: ignore[arg-type]
    except MoroccanEvalError as exc:
        assert "tasks/t.yaml" in str(exc)
        return
    assert all(isinstance(m["content"], str) for m in messages)


# --------------------------------------------------------------------------- parsers

TOOL = {"type": "function", "function": {"name": "draft_reply", "parameters": {}}}


def _task_types() -> list[Any]:
    return [bound_type("classification", labels=("refund", "delivery_status", "other")),
            bound_type("translation"), bound_type("qa"), bound_type("extraction"),
            bound_type("asr"), bound_type("tool_call", tools=[TOOL]),
            bound_type("injection", tools=[TOOL])]


TASK_TYPES = _task_types()
tool_call = st.builds(
    lambda name, args: {"id": "c1", "type": "function",
                        "function": {"name": name, "arguments": args}},
    st.one_of(nasty_text, st.just("draft_reply")),
    st.one_of(model_output, json_value),
)


@pytest.mark.parametrize("task_type", TASK_TYPES, ids=lambda t: t.name)
@FAST
@given(output=st.one_of(st.none(), model_output), reference=json_value,
       calls=st.one_of(st.none(), st.lists(st.one_of(tool_call, json_value), max_size=3)))
def test_every_answer_parser_parses_or_gives_one_clean_error(
        task_type: Any, output: str | None, reference: Any, calls: Any) -> None:
    parser = task_type.parser()
    record = {"id": "i", "group": "g", "task": "t", "variety": "ary_Latn",
              "output": output, "tool_calls": calls, "reference": reference,
              "fields": {"text": "x"}}
    try:
        parsed = parser.parse(output)
        canonical_json(parsed)
        parsed = parser.parse_response(record)
        canonical_json(parsed)
        judgement = parser.judge(parsed, reference)
    except MoroccanEvalError:
        return
    assert isinstance(judgement["correct"], bool)


# --------------------------------------------------------------------------- text


@FAST
@given(st.one_of(nasty_text, number_text))
def test_text_normalisation_is_total_and_idempotent(text: str) -> None:
    once = normalize(text)
    assert isinstance(once, str) and normalize(once) == once
    assert isinstance(normalize(text, punctuation=True), str)
    assert all(isinstance(t, str) and t for t in tokenize(text))
    assert isinstance(strip_latin_accents(text), str)
    assert isinstance(arabic_to_arabizi(text), str)
    assert isinstance(arabizi_to_arabic(text), str)
    assert isinstance(stated_facts(text), set)


@FAST
@given(st.one_of(json_value, number_text))
def test_value_normalisation_is_total(value: Any) -> None:
    assert isinstance(normalize_value(value), str)
    assert isinstance(comparable(value), str)


# --------------------------------------------------------------------------- importers

cell = st.one_of(nasty_text, number_text, st.none())


@SLOW
@given(st.lists(st.fixed_dictionaries({"msg": cell, "team": cell, "lang": cell, "g": cell}),
                max_size=6),
       st.sampled_from(["csv", "jsonl"]), st.binary(max_size=60))
def test_importer_imports_or_gives_one_clean_error(rows: list[dict[str, Any]], fmt: str,
                                                   garbage: bytes) -> None:
    from moroccan_eval.suites.importer import ImportSpec, import_suite, parse_mapping

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"src.{fmt}"
        if fmt == "csv":
            import csv
            import io

            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=["msg", "team", "lang", "g"])
            writer.writeheader()
            writer.writerows(rows)
            data = out.getvalue().encode("utf-8", "surrogatepass")
        else:
            data = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
        source.write_bytes(data + garbage)
        spec = ImportSpec(source=source, fmt=fmt, name="imp", split_ratio=0.5,
                          mapping=parse_mapping("text=msg,label=team,variety=lang,group=g"))
        try:
            target = import_suite(spec, Path(tmp) / "suites")
        except MoroccanEvalError:
            assert not (Path(tmp) / "suites" / "imp").exists()  # nothing half-written
            return
        assume(target.exists())
        for _, item in iter_jsonl(target / "data" / "main.jsonl"):
            assert isinstance(item["id"], str) and isinstance(item["fields"], dict)
