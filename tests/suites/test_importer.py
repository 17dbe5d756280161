"""``suites import`` and ``suites stats``: round trips and refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from moroccan_eval.cli import main
from moroccan_eval.errors import ConfigError, SuiteError
from moroccan_eval.suites.importer import ImportSpec, import_suite, parse_mapping
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.stats import suite_stats

ROWS = [
    {"msg": "salam, bghit nbdel lcarte", "team": "national_id", "lang": "ary_Latn", "g": "1"},
    {"msg": "Bonjour, ma carte nationale est perdue", "team": "national_id",
     "lang": "fra_Latn", "g": "1"},
    {"msg": "فين وصلات الكوموند ديالي؟", "team": "delivery", "lang": "ary_Arab", "g": "2"},
    {"msg": "où est mon colis ?", "team": "delivery", "lang": "fra_Latn", "g": "2"},
    {"msg": "lma ma9tou3 mn lbare7", "team": "water", "lang": "ary_Latn", "g": "3"},
    {"msg": "pas d'eau depuis hier", "team": "water", "lang": "fra_Latn", "g": "3"},
]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.exit_code, result.output


def _fill_card(suite: Path) -> None:
    for name in ("suite.yaml", "CARD.md", "consent.yaml"):
        path = suite / name
        path.write_text(re.sub(r"TODO: [^\"'\n]*", "filled in by the test", path.read_text(
            encoding="utf-8")), encoding="utf-8")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "hf"])
def test_import_round_trips(tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame(ROWS)
    source = tmp_path / f"chats.{fmt}"
    if fmt == "csv":
        frame.to_csv(source, index=False)
    elif fmt == "jsonl":
        frame.to_json(source, orient="records", lines=True, force_ascii=False)
    elif fmt == "parquet":
        frame.to_parquet(source)
    else:
        import datasets

        datasets.Dataset.from_pandas(frame).save_to_disk(str(source))
    code, out = invoke("suites", "import", str(source), "--format", fmt, "--map",
                       "text=msg,label=team,variety=lang,group=g", "--name", "chats",
                       "--out", str(tmp_path / "suites"), "--split-ratio", "0")
    assert code == 0, out
    suite_dir = tmp_path / "suites" / "chats"
    with pytest.raises(SuiteError, match="still the import skeleton's placeholder"):
        load_suite(suite_dir)
    _fill_card(suite_dir)
    suite = load_suite(suite_dir)
    items = list(suite.task("main").items("test"))
    assert sorted((i["fields"]["text"], i["reference"], i["variety"]) for i in items) == \
        sorted((r["msg"], r["team"], r["lang"]) for r in ROWS)
    assert {i["consent_id"] for i in items} == {"imported"}
    stats = suite_stats(suite)["tasks"]["main"]
    assert stats["items"]["test/fra_Latn"] == 3 and stats["labels"] == 3
    # three varieties in the split, but each group has only two of them
    assert stats["groups"]["test"] == {"groups": 3, "complete": 0}


def test_split_ratio_keeps_groups_whole(tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    pd.DataFrame(ROWS * 1).to_csv(source, index=False)
    spec = ImportSpec(source=source, fmt="csv", name="s", split_ratio=0.34,
                      mapping=parse_mapping("text=msg,label=team,variety=lang,group=g"))
    target = import_suite(spec, tmp_path)
    items = [json.loads(line) for line in (target / "data" / "main.jsonl").read_text(
        encoding="utf-8").splitlines()]
    by_group: dict[str, set[str]] = {}
    for item in items:
        by_group.setdefault(item["group"], set()).add(item["split"])
    assert all(len(splits) == 1 for splits in by_group.values())
    assert sum(splits == {"train"} for splits in by_group.values()) == 1


@pytest.mark.parametrize(("content", "args", "message"), [
    (b"msg,team\nsalam,x\n", ["--map", "text=message,label=team", "--variety", "ary_Latn"],
     "no column 'message' (columns: msg, team)"),
    (b"msg,team\n,x\nsalam,y\n", ["--map", "text=msg,label=team", "--variety", "ary_Latn"],
     "c.csv row 2: empty text"),
    (b"msg,team,lang\nsalam,x,ary_latn\n", ["--map", "text=msg,label=team,variety=lang"],
     "unknown variety 'ary_latn' (did you mean 'ary_Latn'?)"),
    ("msg,team\nسلام,x\n".encode("cp1256"), ["--map", "text=msg,label=team", "--variety",
                                             "ary_Arab"], "not UTF-8 text"),
    (b"msg,team\nsalam,x\n", ["--map", "text=msg", "--variety", "ary_Latn"],
     "map label=COLUMN (classification) or reference=COLUMN (translation) is required"),
    (b"msg,team\nsalam,x\n", ["--map", "text=msg,label=team"], "--variety CODE"),
    (b"msg,team\nsalam,x\n", ["--map", "text=msg,label=team", "--variety", "ary_Latn",
                              "--task-type", "extraction"], "'extraction' is not one of"),
    (b"msg,team\nsalam,x\n", ["--map", "text=msg,label=team", "--variety", "ary_Latn",
                              "--name", "../Mine"],
     "--name: '../Mine' must be lowercase letters, digits, _ . -"),
])
def test_import_refuses_bad_input_and_writes_nothing(tmp_path: Path, content: bytes,
                                                     args: list[str], message: str) -> None:
    (tmp_path / "c.csv").write_bytes(content)
    code, out = invoke("suites", "import", str(tmp_path / "c.csv"), "--format", "csv",
                       "--name", "x", "--out", str(tmp_path / "suites"), *args)
    assert code == 2 and message in out and "Traceback" not in out
    assert not (tmp_path / "suites").exists() or list((tmp_path / "suites").iterdir()) == []


def test_a_semicolon_csv_imports(tmp_path: Path) -> None:
    """Spreadsheets in French locales save CSV with semicolons (and a byte-order mark)."""
    source = tmp_path / "chats.csv"
    source.write_bytes("\ufeffmsg;team\r\nsalam, bghit nbdel lcarte;national_id\r\n"
                      "où est mon colis ?;delivery\r\n".encode())
    target = import_suite(ImportSpec(source=source, fmt="csv", name="x", variety="ary_Latn",
                                     mapping=parse_mapping("text=msg,label=team")),
                          tmp_path / "suites")
    texts = [json.loads(line)["fields"]["text"]
             for line in (target / "data" / "main.jsonl").read_text("utf-8").splitlines()]
    assert sorted(texts) == ["où est mon colis ?", "salam, bghit nbdel lcarte"]


def test_import_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("msg,team\nsalam,x\n", encoding="utf-8")
    (tmp_path / "suites" / "x").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already exists"):
        import_suite(ImportSpec(source=tmp_path / "c.csv", fmt="csv", name="x",
                                variety="ary_Latn",
                                mapping=parse_mapping("text=msg,label=team")),
                     tmp_path / "suites")


def test_stats_of_shipped_suites() -> None:
    code, out = invoke("suites", "stats", "support-intents", "--json")
    assert code == 0
    [entry] = json.loads(out)
    intents = entry["tasks"]["intents"]
    assert intents["items"]["test/zgh_Tfng"] == 156
    assert intents["groups"]["test"] == {"groups": 156, "complete": 156}
    # the noisy split re-types the Darija and code-switched test groups, all of them
    assert intents["groups"]["test_noisy"] == {"groups": 156, "complete": 156}
    assert "test_noisy/zgh_Tfng" not in intents["items"]


def test_import_a_translation_dataset(tmp_path: Path) -> None:
    """The shape of DODa-style parallel data: Arabizi with an English translation."""
    frame = pd.DataFrame({"darija": ["fin wslat lcommande?", "bghit nbdel lcarte", "shukran"],
                          "eng": ["Where is the order?", "I want to change the card", "Thanks"]})
    frame.to_csv(tmp_path / "doda.csv", index=False)
    code, out = invoke("suites", "import", str(tmp_path / "doda.csv"), "--format", "csv",
                       "--task-type", "translation", "--map", "text=darija,reference=eng",
                       "--variety", "ary_Latn", "--target-variety", "eng_Latn", "--name", "doda",
                       "--out", str(tmp_path), "--split-ratio", "0")
    assert code == 0, out
    _fill_card(tmp_path / "doda")
    task = load_suite(tmp_path / "doda").task("main")
    assert task.spec.type == "translation" and task.spec.metrics == ["chrf", "bleu"]
    assert "English" in (task.spec.prompt.system or "")
    items = sorted(task.items("test"), key=lambda i: i["fields"]["text"])
    assert items[0]["reference"] == "I want to change the card"
    code, out = invoke("suites", "import", str(tmp_path / "doda.csv"), "--format", "csv",
                       "--task-type", "translation", "--map", "text=darija,reference=eng",
                       "--variety", "ary_Latn", "--name", "x", "--out", str(tmp_path))
    assert code == 2 and "--target-variety CODE" in out


def test_an_empty_variety_cell_is_a_clean_problem(tmp_path: Path) -> None:
    """Found by tests/robustness/test_properties.py: it used to end in an IndexError."""
    source = tmp_path / "c.csv"
    pd.DataFrame([{"msg": "salam", "team": "water", "lang": "", "g": "1"}]).to_csv(
        source, index=False)
    code, out = invoke("suites", "import", str(source), "--format", "csv", "--map",
                       "text=msg,label=team,variety=lang,group=g", "--name", "c",
                       "--out", str(tmp_path / "suites"))
    assert code != 0 and "c.csv row 2: empty variety" in out, out
    assert not (tmp_path / "suites" / "c").exists()


def test_a_jsonl_source_with_a_bad_line_names_it(tmp_path: Path) -> None:
    """Found by tests/robustness/test_properties.py: a stray line ended in a pandas
    TypeError traceback."""
    source = tmp_path / "c.jsonl"
    source.write_text('{"msg": "salam", "team": "water", "lang": "ary_Latn", "g": "1"}\n0\n',
                      encoding="utf-8")
    code, out = invoke("suites", "import", str(source), "--format", "jsonl", "--map",
                       "text=msg,label=team,variety=lang,group=g", "--name", "c",
                       "--out", str(tmp_path / "suites"))
    assert code != 0 and "c.jsonl:2: expected a JSON object per line" in out, out
    assert not (tmp_path / "suites" / "c").exists()


def test_a_missing_jsonl_key_is_an_empty_cell_not_nan(tmp_path: Path) -> None:
    source = tmp_path / "c.jsonl"
    source.write_text('{"msg": "salam", "team": "water", "lang": "ary_Latn", "g": "1"}\n'
                      '{"team": "water", "lang": "fra_Latn", "g": "1"}\n', encoding="utf-8")
    code, out = invoke("suites", "import", str(source), "--format", "jsonl", "--map",
                       "text=msg,label=team,variety=lang,group=g", "--name", "c",
                       "--out", str(tmp_path / "suites"))
    assert code != 0 and "c.jsonl row 2: empty text" in out, out
