"""``suites import-flores`` on an authored fixture in the FLORES+ release layout, and the
documented ``suites import`` commands for DarijaBench and TerjamaBench saved datasets (on
tiny authored tables in their column layouts)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from moroccan_eval.cli import main
from moroccan_eval.errors import ConfigError
from moroccan_eval.suites.flores import LANGUAGES, _Source, import_flores, read_release
from moroccan_eval.suites.loader import load_suite

RELEASE = FIXTURES / "flores" / "floresp-v2.0-rc.3"
PASSWORD = "multilingual machine translation"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.exit_code, result.output


def lines(split: str, lang: str) -> list[str]:
    return (RELEASE / split / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()


def test_a_release_folder_becomes_a_paired_suite(tmp_path: Path) -> None:
    code, out = invoke("suites", "import-flores", str(RELEASE), "--out", str(tmp_path))
    assert code == 0, out
    assert "to_english test/ary_Arab" in out and "do not re-publish" in out
    root = tmp_path / "flores-plus"
    suite = load_suite(root)  # the full loader: seal, card, consent register, PII scan
    assert suite.spec.license == "CC-BY-SA-4.0" and suite.version == "1.0.0"
    to_english = {i["id"]: i for i in suite.task("to_english").all_items()}
    # devtest is the scored split; sentence n of every language shares one group
    item = to_english["devtest-0002-ary_Arab"]
    assert (item["split"], item["group"]) == ("test", "devtest-0002")
    assert item["fields"]["text"] == lines("devtest", "ary_Arab")[1]
    assert item["reference"] == lines("devtest", "eng_Latn")[1]
    assert to_english["dev-0003-zgh_Tfng"]["reference"] == lines("dev", "eng_Latn")[2]
    assert "devtest-0001-eng_Latn" not in to_english  # English is the target here
    to_french = {i["id"]: i for i in suite.task("to_french").all_items()}
    assert to_french["devtest-0004-eng_Latn"]["reference"] == lines("devtest", "fra_Latn")[3]
    variety = list(suite.task("variety").items("test"))
    assert len(variety) == 4 * 5 and all(i["reference"] == i["variety"] for i in variety)
    assert suite.task("variety").labels == list(LANGUAGES)
    groups: dict[str, set[str]] = {}
    for i in variety:
        groups.setdefault(i["group"], set()).add(i["variety"])
    assert all(v == set(LANGUAGES) for v in groups.values())
    # card: source, licence, attribution, the request not to re-host; kept out of git
    card = (root / "CARD.md").read_text(encoding="utf-8")
    for words in ("FLORES+ v2.0-rc.3", "CC BY-SA 4.0", "NLLB Team et al. (2022)",
                  "Open Language Data Initiative", "Do not re-publish this suite's data as "
                  "plain text", "<!-- review:begin -->"):
        assert words in card, words
    assert suite.card.validation_by_variety == {c: "native review pending" for c in LANGUAGES}
    assert (root / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"
    assert oct(root.stat().st_mode & 0o777) != "0o700"


def _passes_the_check_byte(zf: zipfile.ZipFile, member: str, password: str) -> bool:
    try:
        zf.read(member, pwd=password.encode())
    except RuntimeError:  # "Bad password": the check byte caught it
        return False
    except zlib.error:
        return True
    return False


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs the zip program to encrypt")
def test_the_password_protected_release_zip_is_read_in_place(tmp_path: Path) -> None:
    archive = tmp_path / "floresp-v2.0-rc.3.zip"
    subprocess.run(["zip", "-q", "-r", "-P", PASSWORD, str(archive), RELEASE.name],
                   cwd=RELEASE.parent, check=True)
    # really encrypted: no password, no data
    with zipfile.ZipFile(archive) as zf, pytest.raises(RuntimeError, match="encrypted"):
        zf.read(f"{RELEASE.name}/dev/dev.ary_Arab")
    release, name = read_release(archive)
    assert name == "v2.0-rc.3"
    assert [s for s, _ in release["devtest"]["zgh_Tfng"]] == lines("devtest", "zgh_Tfng")
    with pytest.raises(ConfigError, match=r"cannot be decrypted .* --password"):
        read_release(archive, "wrong password")
    # ZipCrypto checks a password against one byte: find a wrong one that passes it, so the
    # damaged-stream path (1 run in 256 with a fixed wrong password) is tested every time
    member = f"{RELEASE.name}/dev/dev.ary_Arab"
    with zipfile.ZipFile(archive) as zf:
        lucky = next(p for p in (f"wrong {i}" for i in range(100_000))
                     if _passes_the_check_byte(zf, member, p))
    with pytest.raises(ConfigError, match=r"password is probably wrong.* --password"):
        _Source(archive, lucky).read(member)
    _, counts = import_flores(archive, tmp_path / "out")
    assert counts["variety dev/eng_Latn"] == 3 and counts["to_english test/zgh_Tfng"] == 4
    assert not list((tmp_path / "out").glob("*/dev")), "nothing unpacked beside the suite"


def test_the_hugging_face_parquet_layout(tmp_path: Path) -> None:
    """``openlanguagedata/flores_plus`` files: <split>/<lang>.parquet with id, text and
    metadata columns (rows in any order: the id decides)."""
    for split in ("dev", "devtest"):
        (tmp_path / "hf" / split).mkdir(parents=True)
        for lang in LANGUAGES:
            texts = lines(split, lang)
            frame = pd.DataFrame({
                "id": list(range(1, len(texts) + 1)), "iso_639_3": lang[:3],
                "iso_15924": lang[4:], "glottocode": "xxxx0000", "text": texts,
                "url": [f"https://en.wikinews.org/wiki/Fixture_{n}" for n in range(len(texts))],
                "domain": "wikinews", "topic": "fixture", "has_image": 0, "has_hyperlink": 0,
                "last_updated": "2.0"}).iloc[::-1]
            frame.to_parquet(tmp_path / "hf" / split / f"{lang}.parquet", index=False)
    target, _ = import_flores(tmp_path / "hf", tmp_path / "out", name="flores-hf")
    items = {i["id"]: i for i in load_suite(target).task("to_english").all_items()}
    first = items["devtest-0001-fra_Latn"]
    assert first["fields"]["text"] == lines("devtest", "fra_Latn")[0]
    assert first["meta"]["domain"] == "wikinews" and first["meta"]["flores_id"] == 1


@pytest.mark.parametrize(("damage", "message"), [
    (lambda r: (r / "devtest" / "devtest.zgh_Tfng").unlink(),
     r"devtest: no file for zgh_Tfng \(expected e\.g\. devtest/devtest\.zgh_Tfng"),
    (lambda r: (r / "dev" / "dev.arb_Arab").write_text("one line\n", encoding="utf-8"),
     r"dev: the languages are not parallel \(sentences: ary_Arab 3, arb_Arab 1"),
    (lambda r: (r / "dev" / "dev.eng_Latn").write_text("a\n\nb\n", encoding="utf-8"),
     r"dev\.eng_Latn: line 2 is empty"),
    (lambda r: shutil.rmtree(r),
     r"no FLORES\+ dev or devtest file found"),
])
def test_a_broken_release_is_refused_and_nothing_written(tmp_path: Path, damage: object,
                                                         message: str) -> None:
    copy = tmp_path / "src" / RELEASE.name
    shutil.copytree(RELEASE, copy)
    damage(copy)  # type: ignore[operator]
    code, out = invoke("suites", "import-flores", str(tmp_path / "src"), "--out",
                       str(tmp_path / "out"))
    assert code == 2 and re.search(message, out), out
    assert "Traceback" not in out
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_an_existing_suite_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "flores-plus").mkdir()
    code, out = invoke("suites", "import-flores", str(RELEASE), "--out", str(tmp_path))
    assert code == 2 and "already exists" in out
    code, out = invoke("suites", "import-flores", str(tmp_path / "nope.zip"))
    assert code == 2 and "no such file or folder" in out


# --------------------------------------------------------------------------- other benchmarks


def _fill_card(suite: Path) -> None:
    for name in ("suite.yaml", "CARD.md", "consent.yaml"):
        path = suite / name
        path.write_text(re.sub(r"TODO: [^\"'\n]*", "filled in by the test", path.read_text(
            encoding="utf-8")), encoding="utf-8")


def test_terjamabench_saved_dataset_imports_with_the_documented_command(tmp_path: Path) -> None:
    """TerjamaBench's columns (topic, subtopic, Arabizi, English, Darija; split test), with
    three authored rows."""
    import datasets

    rows = {"topic": ["Common Phrases", "Numeric and Date", "Mixed Language"],
            "subtopic": ["greetings", "money", "plans"],
            "Arabizi": ["labas 3lik?", "3ndek chi 20 dh?", "ghda n3iyt lik apres le travail"],
            "English": ["Are you well?", "Do you have 20 dirhams?",
                        "I'll call you tomorrow after work"],
            "Darija": ["لاباس عليك؟", "عندك شي 20 درهم؟", "غدا نعيط ليك أبري لو طراڤاي"]}
    saved = tmp_path / "TerjamaBench"
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(str(saved))
    for column, variety in (("Darija", "ary_Arab"), ("Arabizi", "ary_Latn")):
        name = f"terjamabench-{variety.lower().replace('_', '-')}"
        code, out = invoke("suites", "import", str(saved), "--format", "hf", "--task-type",
                           "translation", "--map", f"text={column},reference=English",
                           "--variety", variety, "--target-variety", "eng_Latn",
                           "--name", name, "--out", str(tmp_path / "suites"))
        assert code == 0, out
        _fill_card(tmp_path / "suites" / name)
        items = sorted(load_suite(tmp_path / "suites" / name).task("main").items("test"),
                       key=lambda i: i["reference"])
        assert [(i["fields"]["text"], i["reference"]) for i in items] == sorted(
            zip(rows[column], rows["English"], strict=True), key=lambda p: p[1])


def test_darijabench_split_converted_then_imported(tmp_path: Path) -> None:
    """DarijaBench rows are chat messages (dataset, id, direction, messages[{content,
    role}]), one split per source dataset: the documented two steps, a pandas conversion
    of one split to a table, then `suites import --format parquet`. Rows authored."""
    import datasets

    def chat(instruction: str, answer: str) -> list[dict[str, str]]:
        return [{"content": instruction, "role": "user"},
                {"content": answer, "role": "assistant"}]

    rows = {"dataset": ["madar"] * 3, "id": ["m1", "m2", "m3"],
            "direction": ["dr_en", "dr_en", "en_dr"],
            "messages": [chat("ترجم للإنجليزية: فين كاين الطوبيس؟", "Where is the bus?"),
                         chat("ترجم للإنجليزية: شحال الساعة؟", "What time is it?"),
                         chat("Translate to Darija: thank you", "شكرا")]}
    saved = tmp_path / "DarijaBench"
    datasets.DatasetDict({"madar": datasets.Dataset.from_dict(rows)}).save_to_disk(str(saved))
    # step 1, as documented (README): one split, one direction, user text and answer columns
    split = datasets.load_from_disk(str(saved))["madar"].to_pandas()
    split = split[split["direction"] == "dr_en"]
    table = pd.DataFrame({"id": split["id"],
                          "text": [m[0]["content"].split(":", 1)[-1].strip()
                                   for m in split["messages"]],
                          "reference": [m[-1]["content"] for m in split["messages"]]})
    table.to_parquet(tmp_path / "madar-dr_en.parquet", index=False)
    # step 2
    code, out = invoke("suites", "import", str(tmp_path / "madar-dr_en.parquet"),
                       "--format", "parquet", "--task-type", "translation",
                       "--map", "text=text,reference=reference,id=id", "--variety", "ary_Arab",
                       "--target-variety", "eng_Latn", "--name", "darijabench-madar",
                       "--split-ratio", "0", "--out", str(tmp_path / "suites"))
    assert code == 0, out
    _fill_card(tmp_path / "suites" / "darijabench-madar")
    items = {i["id"]: i for i in
             load_suite(tmp_path / "suites" / "darijabench-madar").task("main").items("test")}
    assert items["m1"]["fields"]["text"] == "فين كاين الطوبيس؟"
    assert items["m2"]["reference"] == "What time is it?" and "m3" not in items
    # the saved DatasetDict cannot be imported as it is: its split names are sources
    code, out = invoke("suites", "import", str(saved), "--format", "hf", "--task-type",
                       "translation", "--map", "text=messages,reference=messages",
                       "--variety", "ary_Arab", "--target-variety", "eng_Latn",
                       "--name", "x", "--out", str(tmp_path / "suites"))
    assert code == 2 and "split 'madar' is not test, train or dev" in out
    assert json.loads(json.dumps(rows))  # the authored rows are plain JSON data
