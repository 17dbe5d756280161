"""A suite handed over by anyone must not escape its folder, hang, or crash the toolkit
(issue "Trust"): every hostile input below was measured to escape, hang or raise a
traceback before; each must now give one clear message, a non-zero exit and no output."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import edit_items

from moroccan_eval.cli import main
from moroccan_eval.errors import ConfigError, SuiteError
from moroccan_eval.io import load_yaml, sha256_file
from moroccan_eval.suites.checks import MAX_CONTEXT_CHARS, MAX_ITEM_CHARS
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.seal import write_checksums

DATA = "data/intents.jsonl"
TASK = "tasks/intents.yaml"


def invoke(*args: str) -> tuple[int, str]:
    """The real CLI; a traceback (any exception but SystemExit) fails the test."""
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"traceback for {args}: {result.exception!r}")
    return result.exit_code, result.output


def run_cli(suite: Path, tmp_path: Path) -> tuple[int, str, Path]:
    out = tmp_path / "runs"
    code, output = invoke("run", "--suite", str(suite), "--model", "char-ngram", "--out",
                          str(out), "--no-cache", "--allow-unanonymized")
    return code, output, out


def assert_refused(suite: Path, tmp_path: Path, *needles: str) -> str:
    """``suites validate`` and ``run`` both refuse with one message holding ``needles``,
    and ``run`` leaves no run directory behind."""
    code, output = invoke("suites", "validate", str(suite))
    assert code == 2, output
    assert "Traceback" not in output
    for needle in needles:
        assert needle in output, output
    code, output, out = run_cli(suite, tmp_path)
    assert code != 0, output
    assert "Traceback" not in output
    for needle in needles:
        assert needle in output, output
    assert not list(out.glob("*/manifest.json")), "a refused suite must leave no run"
    return output


def task_set(suite: Path, **fields: Any) -> None:
    """Edit the task file and reseal, as the checksum error recommends."""
    path = suite / TASK
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec.update(fields)
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def seal_by_hand(suite: Path, rel: str, file: Path) -> None:
    """Seal a suite that ``suites checksum --write`` refuses to seal, as a hostile author
    would: every checksum written into suite.yaml by hand."""
    spec = yaml.safe_load((suite / "suite.yaml").read_text(encoding="utf-8"))
    spec["checksums"] = {TASK: sha256_file(suite / TASK), DATA: sha256_file(suite / DATA),
                         rel: sha256_file(file)}
    (suite / "suite.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def assert_not_sealed(suite: Path, *needles: str) -> None:
    before = (suite / "suite.yaml").read_bytes()
    code, output = invoke("suites", "checksum", str(suite), "--write")
    assert code == 2, output
    for needle in ("outside the suite", *needles):
        assert needle in output, output
    assert (suite / "suite.yaml").read_bytes() == before


# --------------------------------------------------------------------------- confinement


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_text("SECRET-OUTSIDE-THE-SUITE\n", encoding="utf-8")
    return path


def test_context_file_with_dot_dot_is_refused(mini_suite: Path, secret: Path,
                                              tmp_path: Path) -> None:
    rel = "../outside/secret.txt"
    task_set(mini_suite, context_file=rel)
    assert_not_sealed(mini_suite, "intents.yaml: context_file")
    seal_by_hand(mini_suite, rel, secret)
    output = assert_refused(mini_suite, tmp_path, "intents.yaml", "context_file",
                            "outside the suite")
    assert "SECRET" not in output


def test_data_file_with_dot_dot_is_refused(mini_suite: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_bytes((mini_suite / DATA).read_bytes())
    task_set(mini_suite, data="../elsewhere.jsonl")
    assert_not_sealed(mini_suite, "intents.yaml: data")
    seal_by_hand(mini_suite, "../elsewhere.jsonl", outside)
    assert_refused(mini_suite, tmp_path, "intents.yaml", "data", "outside the suite")


def test_symlink_to_outside_is_refused_and_never_sealed(mini_suite: Path, secret: Path,
                                                       tmp_path: Path) -> None:
    (mini_suite / "data" / "kb.md").symlink_to(secret)
    task_set(mini_suite, context_file="data/kb.md")
    assert_not_sealed(mini_suite, "data/kb.md")
    seal_by_hand(mini_suite, "data/kb.md", secret)  # the loader refuses it all the same
    output = assert_refused(mini_suite, tmp_path, "data/kb.md", "outside the suite")
    assert "SECRET" not in output


def test_symlinked_data_folder_is_refused(mini_suite: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside-data"
    (mini_suite / "data").rename(outside)
    (mini_suite / "data").symlink_to(outside, target_is_directory=True)
    assert_not_sealed(mini_suite, "data")
    assert_refused(mini_suite, tmp_path, "outside the suite")


def test_symlink_inside_the_suite_is_fine(mini_suite: Path, tmp_path: Path) -> None:
    (mini_suite / "data" / "kb.md").write_text("# sources\n", encoding="utf-8")
    (mini_suite / "data" / "alias.md").symlink_to("kb.md")
    task_set(mini_suite, context_file="data/alias.md")
    write_checksums(mini_suite)
    suite = load_suite(mini_suite, allow_unanonymized=True)
    assert suite.tasks["intents"].context == "# sources\n"


@pytest.mark.parametrize("size", [MAX_CONTEXT_CHARS + 1, 4 * MAX_CONTEXT_CHARS + 1])
def test_an_oversized_context_file_is_refused_before_the_privacy_gate(
        mini_suite: Path, tmp_path: Path, size: int) -> None:
    (mini_suite / "data" / "kb.md").write_text("a" * size, encoding="utf-8")
    task_set(mini_suite, context_file="data/kb.md")
    write_checksums(mini_suite)
    with pytest.raises(SuiteError, match=f"context_file: data/kb.md .*{MAX_CONTEXT_CHARS:,}"):
        load_suite(mini_suite)  # with the gate, whose spaCy refuses 1,000,000 characters


def test_consent_register_symlinked_outside_is_refused(mini_suite: Path,
                                                       secret: Path) -> None:
    (mini_suite / "consent.yaml").symlink_to(secret)
    with pytest.raises(SuiteError, match=r"consent.yaml.*outside the suite"):
        load_suite(mini_suite, allow_unanonymized=True)


def test_audio_path_of_any_task_type_is_confined(mini_suite: Path, secret: Path,
                                                 tmp_path: Path) -> None:
    edit_items(mini_suite, DATA,
               lambda items: items[0]["fields"].update(audio="../outside/secret.txt"))
    assert_refused(mini_suite, tmp_path, "fields.audio", "outside the suite", "t1-arb_Arab")


# --------------------------------------------------------------------------- hostile items


def test_invalid_utf8_inside_a_json_string(mini_suite: Path, tmp_path: Path) -> None:
    path = mini_suite / DATA
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"bghit", b"bgh\xff\xfeit")
    lines[4] = lines[4].replace(b'"t2', b'"t2\xc3')
    path.write_bytes(b"".join(lines))
    write_checksums(mini_suite)
    output = assert_refused(mini_suite, tmp_path, f"{DATA}:2", f"{DATA}:5", "UTF-8")
    assert "2 problem(s)" in output  # every bad line at once, mkdocs-style


@pytest.mark.parametrize(("change", "needle"), [
    (lambda it: it.update(fields="hello"), "fields must be a JSON object"),
    (lambda it: it.update(fields=["a"]), "fields must be a JSON object"),
    (lambda it: it.update(fields=None), "fields must be a JSON object"),
    (lambda it: it.update(meta="x"), "meta must be a JSON object"),
    (lambda it: it.update(id=5), "id must be a string"),
    (lambda it: it.update(id=None), "id must be a string"),
    (lambda it: it.update(group=["g"]), "group must be a string"),
    (lambda it: it.update(variety=3), "variety must be a string"),
    (lambda it: it.update(consent_id={"a": 1}), "consent_id must be a string"),
    (lambda it: it.update(extra="x"), "unknown item field 'extra'"),
    (lambda it: it.pop("reference"), "missing item field 'reference'"),
    (lambda it: it["fields"].update(labels=["refund"]), "fields.labels"),
    (lambda it: it["fields"].update(text=[1]), "fields.text must be a string"),
    (lambda it: it["fields"].update(text=5), "fields.text must be a string"),
    (lambda it: it["meta"].update(n=2 ** 70), "beyond 64-bit integers"),
], ids=["fields-str", "fields-list", "fields-null", "meta-str", "id-int", "id-null",
        "group-list", "variety-int", "consent-dict", "extra-key", "no-reference",
        "reserved-field", "text-list", "text-int", "int-over-64-bits"])
def test_item_of_the_wrong_shape(mini_suite: Path, tmp_path: Path, change: Any,
                                 needle: str) -> None:
    edit_items(mini_suite, DATA, lambda items: change(items[3]))
    assert_refused(mini_suite, tmp_path, f"{DATA}:4", needle)


def test_a_lone_surrogate_escape_is_refused(mini_suite: Path, tmp_path: Path) -> None:
    path = mini_suite / DATA
    path.write_bytes(path.read_bytes().replace(b"bghit", b"bgh\\ud800it", 1))
    write_checksums(mini_suite)
    assert_refused(mini_suite, tmp_path, f"{DATA}:2", "surrogate")


def test_extra_field_key_of_mixed_types_loads_as_written(mini_suite: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        items[3]["fields"]["note"] = "a string"
        items[4]["fields"]["note"] = [1, {"x": None}]

    edit_items(mini_suite, DATA, change)
    suite = load_suite(mini_suite, allow_unanonymized=True)
    items = list(suite.tasks["intents"].all_items())
    assert items[3]["fields"]["note"] == "a string"
    assert items[4]["fields"]["note"] == [1, {"x": None}]


def test_a_50_mb_item_is_refused_before_the_privacy_gate(
        mini_suite: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    edit_items(mini_suite, DATA,
               lambda items: items[2]["fields"].update(text="ab " * (17 * 1024 * 1024)))
    started = time.monotonic()
    with pytest.raises(SuiteError) as info:
        load_suite(mini_suite)  # with the privacy gate: spaCy must never see it
    message = str(info.value)
    assert f"{DATA}:3" in message and "t1-fra_Latn" in message
    assert f"{MAX_ITEM_CHARS:,}" in message
    assert time.monotonic() - started < 30
    captured = capfd.readouterr()
    assert "Failed to load JSON" not in captured.out + captured.err


def test_an_item_just_under_the_cap_loads(mini_suite: Path) -> None:
    edit_items(mini_suite, DATA, lambda items: items[2]["fields"].update(
        text="x" * (MAX_ITEM_CHARS // 2)))
    load_suite(mini_suite, allow_unanonymized=True)


def test_a_line_over_the_byte_cap_is_refused_without_reading_it_whole(
        mini_suite: Path) -> None:
    from moroccan_eval.suites.checks import MAX_LINE_BYTES

    with (mini_suite / DATA).open("ab") as fh:
        fh.write(b'{"id": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n')
    write_checksums(mini_suite)
    with pytest.raises(SuiteError, match=f"{DATA}:22: line longer than"):
        load_suite(mini_suite, allow_unanonymized=True)


@pytest.mark.parametrize("raw", [
    b'{"id": ' + b"1" * 5000 + b"}",  # Python refuses ints over 4300 digits (ValueError)
    b"[" * 100_000 + b"]" * 100_000,  # RecursionError in json
    b'{"id": NaN}',
    b'{"a": 1, "a": 2}',
])
def test_pathological_json_lines(mini_suite: Path, raw: bytes) -> None:
    with (mini_suite / DATA).open("ab") as fh:
        fh.write(raw + b"\n")
    write_checksums(mini_suite)
    with pytest.raises(SuiteError, match=f"{DATA}:22"):
        load_suite(mini_suite, allow_unanonymized=True)


def test_deeply_nested_fields_are_refused(mini_suite: Path) -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    edit_items(mini_suite, DATA, lambda items: items[0]["fields"].update(note=deep))
    with pytest.raises(SuiteError, match="nested deeper than"):
        load_suite(mini_suite, allow_unanonymized=True)


# --------------------------------------------------------------------------- placeholders


@pytest.mark.parametrize(("file", "old", "new", "needle"), [
    ("suite.yaml", "license: CC-BY-4.0", "license: TODO", "license"),
    ("suite.yaml", "description: Tiny fixture suite for the tests",
     "description: Tiny fixture suite (TODO describe it)", "description"),
    ("CARD.md", "retention: Kept with the test suite.", "retention: TODO", "retention"),
    ("CARD.md", "retention: Kept with the test suite.",
     "retention: Kept.\nknown_gaps: TODO list them", "known_gaps"),
    ("CARD.md", "authored test fixture; not reviewed",
     "arb_Arab checked, others TODO", "validation_status"),
])
def test_todo_placeholders_are_refused(mini_suite: Path, file: str, old: str, new: str,
                                       needle: str) -> None:
    path = mini_suite / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    code, output = invoke("suites", "validate", str(mini_suite))
    assert code == 2 and needle in output and "TODO" in output, output


def test_todo_in_the_consent_register_is_refused(mini_suite: Path) -> None:
    (mini_suite / "consent.yaml").write_text(yaml.safe_dump({"consents": [{
        "id": "c1", "source": "TODO: origin of chats.csv", "scope": "evaluation",
        "given": "2026-01-01", "expires": None, "withdrawn": None}], "tombstones": []}),
        encoding="utf-8")
    with pytest.raises(SuiteError, match=r"consent.yaml.*consents\[1\]\.source.*TODO"):
        load_suite(mini_suite, load_data=False)


# --------------------------------------------------------------------------- YAML aliases


BILLION_LAUGHS = """\
name: laughs
adapter: openai_compat
base_url: http://127.0.0.1:9/v1
model: mock
params:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_yaml_aliases_are_refused_quickly(mini_suite: Path, tmp_path: Path) -> None:
    model = tmp_path / "laughs.yaml"
    model.write_text(BILLION_LAUGHS, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"laughs.yaml:6:.*anchor"):
        load_yaml(model, "model file")
    code, output = invoke("run", "--suite", str(mini_suite), "--model", str(model),
                          "--out", str(tmp_path / "runs"), "--allow-unanonymized")
    assert code == 2 and "laughs.yaml:6" in output and "anchors" in output, output
    assert time.monotonic() - started < 10


def test_a_merge_key_alias_in_a_task_file_is_refused(mini_suite: Path) -> None:
    path = mini_suite / TASK
    path.write_text(path.read_text(encoding="utf-8") + "x: &x {a: 1}\ny: *x\n",
                    encoding="utf-8")
    write_checksums(mini_suite)
    with pytest.raises(SuiteError, match=r"intents.yaml:.*anchor"):
        load_suite(mini_suite, load_data=False)


def test_no_shipped_yaml_uses_anchors() -> None:
    from conftest import REPO

    files = [p for folder in ("suites", "models", "anonymize", "reports")
             for p in (REPO / folder).rglob("*.yaml")]
    assert len(files) > 20
    for path in files:
        load_yaml(path)  # the alias-refusing loader


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize(("template", "needle"), [
    ("{% for i in range(10**9) %}{{ i }}{% endfor %}", "range"),
    ("{{ (9 ** 99999999) % 7 }}", "too large"),
    ("{{ 'a' * 10**8 }}", "too large"),
    ("{{ 'a'.center(10**9) }}", "too large"),
    ("{{ 'a'|center(10**9) }}", "too large"),
    ("{{ '%0999999999d' % 1 }}", "too large"),
    ("{{ '%0999999999d'|format(1) }}", "too large"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s|length }}", "too large"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}"
     "{% endfor %}{{ ns.s|length }}", "too large"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}"
     "{% set ns.s = ns.s.replace('a', 'aa') %}{% endfor %}{{ ns.s|length }}", "too large"),
    ("{% set ns = namespace(x=3) %}{% for i in range(100) %}{% set ns.x = ns.x * ns.x %}"
     "{% endfor %}{{ ns.x % 7 }}", "too large"),
    ("{% for i in range(5000) %}{{ text * 100 }}{% endfor %}", "characters"),
    ("{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}",
     "iterations"),
    ("{% for c in text * 1000 %}{% for d in text * 1000 %}{% endfor %}{% endfor %}",
     "iterations"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "intents.yaml"),
    ("{{ 1 / 0 }}", "division by zero"),
    ("{{ lipsum(n=1000000) }}", "lipsum"),
    ("{% include 'x.j2' %}", "intents.yaml"),
    ("{{ 2.0 ** 5000 }}", "intents.yaml"),
    ("{{ text.__class__ }}", "intents.yaml"),
])
def test_hostile_templates_fail_fast_at_load_time(mini_suite: Path, tmp_path: Path,
                                                  template: str, needle: str) -> None:
    task_set(mini_suite, prompt={"user": template})
    write_checksums(mini_suite)
    started = time.monotonic()
    output = assert_refused(mini_suite, tmp_path, "intents.yaml", "prompt", needle)
    assert time.monotonic() - started < 60
    assert len(output) < 5000


def test_template_error_in_a_variety_override_names_the_variety(mini_suite: Path) -> None:
    task_set(mini_suite, prompt={"user": "{{ text }}", "by_variety": {
        "fra_Latn": {"user": "{{ 'a' * 10**8 }}"}}})
    write_checksums(mini_suite)
    with pytest.raises(SuiteError, match=r"fra_Latn.*too large"):
        load_suite(mini_suite, allow_unanonymized=True)


def test_ordinary_templates_still_render(mini_suite: Path) -> None:
    from moroccan_eval.prompts import PromptRenderer

    task_set(mini_suite, prompt={"user": "{% for i in range(3) %}{{ i * 2 }}{% endfor %} "
                                         "{{ 2 ** 10 }} {{ text|upper }} {{ '%s!' % text }}"})
    write_checksums(mini_suite)
    suite = load_suite(mini_suite, allow_unanonymized=True)
    task = suite.tasks["intents"]
    item = next(task.all_items())
    [message] = PromptRenderer(task.spec).render(item)
    assert message["content"] == f"024 1024 {item['fields']['text'].upper()} " \
                                 f"{item['fields']['text']}!"


def test_a_template_that_only_fails_on_some_item_fails_the_run_cleanly(
        mini_suite: Path, tmp_path: Path) -> None:
    task_set(mini_suite, prompt={"user": "{{ text }}{% if 'svp' in text %}"
                                         "{{ 'a' * 10**8 }}{% endif %}"})
    write_checksums(mini_suite)
    code, output, _ = run_cli(mini_suite, tmp_path)
    assert code != 0 and "too large" in output and "intents.yaml" in output, output
