"""The consent register, withdrawal, retention and the suite loader's privacy gate."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import edit_items

from moroccan_eval.cli import main
from moroccan_eval.errors import ConfigError, SuiteError
from moroccan_eval.privacy.consent import load_register, today
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.seal import write_checksums


def _items(suite: Path) -> list[dict[str, object]]:
    path = suite / "data" / "intents.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _rewrite(suite: Path, items: list[dict[str, object]]) -> None:
    (suite / "data" / "intents.jsonl").write_text(
        "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    write_checksums(suite)


def _consented(suite: Path, expires: date | None = None) -> Path:
    """The mini suite with its ary_Latn items given under consent C-1."""
    items = _items(suite)
    for item in items:
        if item["variety"] == "ary_Latn":
            item["consent_id"] = "C-1"
    _rewrite(suite, items)
    (suite / "consent.yaml").write_text(yaml.safe_dump({"consents": [{
        "id": "C-1", "source": "test chats (fictitious)", "scope": "evaluation",
        "given": "2026-01-01", "expires": expires.isoformat() if expires else None,
    }]}), encoding="utf-8")
    card = suite / "CARD.md"
    card.write_text(card.read_text(encoding="utf-8").replace("basis: authored",
                                                             "basis: consent_register"),
                    encoding="utf-8")
    return suite


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.exit_code, result.output


def test_gate_refuses_a_planted_phone_number(mini_suite: Path, tmp_path: Path) -> None:
    items = _items(mini_suite)
    items[3]["fields"] = {"text": "3iyto lia f 06 61 23 45 67 3afak"}
    _rewrite(mini_suite, items)
    with pytest.raises(SuiteError, match="fails the privacy gate") as error:
        load_suite(mini_suite)
    message = str(error.value)
    assert f"item {items[3]['id']}: fields.text: MA_PHONE" in message
    assert "moroccan-eval anonymize apply" in message and "06 61" not in message

    code, out = invoke("run", "--suite", str(mini_suite), "--model", "majority",
                       "--out", str(tmp_path / "runs"))
    assert code == 2 and "fails the privacy gate" in out
    code, out = invoke("run", "--suite", str(mini_suite), "--model", "majority",
                       "--out", str(tmp_path / "runs"), "--allow-unanonymized")
    assert code == 0 and "warning: --allow-unanonymized" in out
    [run_dir] = (tmp_path / "runs").iterdir()
    assert load_run(run_dir).manifest.allow_unanonymized is True
    code, _ = invoke("report", str(run_dir), "-o", str(tmp_path / "r.html"))
    assert "used --allow-unanonymized" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_a_clean_suite_is_scanned_once_per_content_and_policy(
        mini_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moroccan_eval.cache import default_cache_dir
    from moroccan_eval.resources import shipped

    def markers() -> set[Path]:
        return set((default_cache_dir() / "verdicts" / "pii-gate").glob("*.ok"))

    load_suite(mini_suite)
    assert len(first := markers()) == 1
    load_suite(mini_suite)
    assert markers() == first, "a clean, unchanged suite is not scanned again"
    # another policy (a stricter one may find something): scanned again
    shutil.copytree(shipped("anonymize"), tmp_path / "anonymize")
    policy = tmp_path / "anonymize" / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8")
                      .replace("min_score: 0.", "min_score: 0.0", 1), encoding="utf-8")
    monkeypatch.setenv("MOROCCAN_EVAL_ANONYMIZE_POLICY", str(policy))
    load_suite(mini_suite)
    assert len(markers()) == 2
    monkeypatch.delenv("MOROCCAN_EVAL_ANONYMIZE_POLICY")
    # changed items (resealed): scanned again, and personal data found is never remembered
    edit_items(mini_suite, "data/intents.jsonl", lambda items: items[0]["fields"].update(
        text="rappelez-moi au 0661 23 45 67"))
    with pytest.raises(SuiteError, match="fails the privacy gate"):
        load_suite(mini_suite)
    with pytest.raises(SuiteError, match="fails the privacy gate"):
        load_suite(mini_suite)
    assert len(markers()) == 2


def test_items_are_read_for_consents_once_per_content_unless_they_rely_on_a_register(
        mini_suite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moroccan_eval.suites.loader import Suite

    load_suite(mini_suite)  # every item authored: remembered for this content
    with monkeypatch.context() as patch:
        patch.setattr(Suite, "consent_ids", lambda self: pytest.fail("items read again"))
        assert load_suite(mini_suite).name == "mini"
    # items relying on a register are checked at every load: a consent expires with time
    suite = _consented(mini_suite, expires=today() + timedelta(days=1))
    assert load_suite(suite).name == "mini"
    monkeypatch.setattr("moroccan_eval.privacy.consent.today",
                        lambda: date.today() + timedelta(days=2))
    with pytest.raises(SuiteError, match="expired on"):
        load_suite(suite)


def test_consents_must_be_registered_and_valid(mini_suite: Path) -> None:
    suite = _consented(mini_suite)
    assert load_suite(suite).name == "mini"
    register = suite / "consent.yaml"
    saved = register.read_text(encoding="utf-8")
    register.unlink()
    with pytest.raises(SuiteError, match=r"consent\.yaml: missing, but items rely on consents"):
        load_suite(suite)
    register.write_text(saved.replace("C-1", "C-2"), encoding="utf-8")
    with pytest.raises(SuiteError, match="no consent 'C-1'"):
        load_suite(suite)
    register.write_text(saved, encoding="utf-8")
    card = suite / "CARD.md"
    card.write_text(card.read_text(encoding="utf-8").replace("consent_register", "authored"),
                    encoding="utf-8")
    with pytest.raises(SuiteError, match="set basis: consent_register"):
        load_suite(suite)


def test_withdrawal_removes_items_and_the_suite_still_validates(mini_suite: Path) -> None:
    suite = _consented(mini_suite)
    before = _items(suite)
    gone = [i["id"] for i in before if i["consent_id"] == "C-1"]
    code, out = invoke("consent", "withdraw", str(suite), "C-1")
    assert code == 0 and f"{len(gone)} item(s) removed" in out
    after = _items(suite)
    assert len(after) == len(before) - len(gone) and all(i["consent_id"] != "C-1" for i in after)
    assert load_suite(suite).name == "mini"  # resealed
    register = load_register(suite)
    assert register is not None and register.get("C-1").withdrawn == today()  # type: ignore[union-attr]
    assert sorted(t.item_id for t in register.tombstones) == sorted(gone)
    tombstones = (suite / "consent.yaml").read_text(encoding="utf-8")
    audit = (suite / "audit.jsonl").read_text(encoding="utf-8")
    for item in before:
        if item["consent_id"] == "C-1":
            text = str(item["fields"]["text"])  # type: ignore[index]
            assert text not in tombstones and text not in audit
    assert json.loads(audit.splitlines()[-1])["items_removed"] == len(gone)
    code, out = invoke("consent", "list", str(suite))
    assert code == 0 and "C-1" in out and f"withdrawn on {today()}" in out
    code, out = invoke("consent", "withdraw", str(suite), "C-9")
    assert code == 2 and "no consent 'C-9'" in out


def test_expired_consent_blocks_loading_until_purged(mini_suite: Path) -> None:
    suite = _consented(mini_suite, expires=today() - timedelta(days=1))
    with pytest.raises(SuiteError, match=r"expired on .* run `moroccan-eval retention purge"):
        load_suite(suite)
    code, out = invoke("retention", "check", str(suite))
    assert code == 1 and "C-1: expired on" in out
    code, out = invoke("retention", "purge", str(suite))
    assert code == 0 and "purged C-1" in out
    assert load_suite(suite).name == "mini"
    assert invoke("retention", "check", str(suite))[0] == 0


def test_withdrawn_consent_still_in_data_is_refused(mini_suite: Path) -> None:
    suite = _consented(mini_suite)
    register = yaml.safe_load((suite / "consent.yaml").read_text(encoding="utf-8"))
    register["consents"][0]["withdrawn"] = "2026-06-01"
    (suite / "consent.yaml").write_text(yaml.safe_dump(register), encoding="utf-8")
    with pytest.raises(SuiteError, match="consent 'C-1' withdrawn on 2026-06-01 but still used"):
        load_suite(suite)


def test_a_consent_expiring_before_it_was_given_is_refused(mini_suite: Path) -> None:
    suite = _consented(mini_suite)
    register = yaml.safe_load((suite / "consent.yaml").read_text(encoding="utf-8"))
    register["consents"][0]["expires"] = "2020-01-01"
    (suite / "consent.yaml").write_text(yaml.safe_dump(register), encoding="utf-8")
    code, out = invoke("consent", "list", str(suite))
    assert code == 2 and "consent 'C-1' expires (2020-01-01) before it was given" in out


def test_csv_register_works_the_same(mini_suite: Path) -> None:
    suite = _consented(mini_suite)
    (suite / "consent.yaml").unlink()
    (suite / "consent.csv").write_text(
        "id,source,scope,given,expires,withdrawn\n"
        "C-1,test chats (fictitious),evaluation,2026-01-01,,\n", encoding="utf-8")
    assert load_suite(suite).name == "mini"
    code, _ = invoke("consent", "withdraw", str(suite), "C-1")
    assert code == 0 and not (suite / "consent.yaml").exists()
    assert f",{today()}" in (suite / "consent.csv").read_text(encoding="utf-8")
    tombstones = (suite / "tombstones.csv").read_text(encoding="utf-8").splitlines()
    assert tombstones[0] == "item_id,consent_id,removed" and len(tombstones) > 1
    (suite / "consent.csv").write_bytes(  # as Excel in French saves it: BOM, ;, CRLF
        b"\xef\xbb\xbfid;source;scope;given;expires;withdrawn\r\n"
        b"C-1;test chats, fictitious;evaluation;2026-01-01;;\r\n")
    register = load_register(suite)
    assert register is not None and register.get("C-1") is not None
    (suite / "consent.csv").write_text("id,scope\nC-1,evaluation\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="missing column"):
        load_register(suite)


def test_consent_schema_file_is_current() -> None:
    from moroccan_eval.privacy.consent import Register
    from moroccan_eval.resources import shipped

    shipped_schema = json.loads(shipped("anonymize", "consent-register.schema.json")
                                .read_text(encoding="utf-8"))
    assert shipped_schema == json.loads(json.dumps(Register.model_json_schema()))


def test_a_changed_gazetteer_is_another_policy(
        mini_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The remembered verdict names the policy by its file and the gazetteers it names,
    read without validating it: a name added to a gazetteer scans the suite again."""
    import moroccan_eval.privacy.gate as gate
    import moroccan_eval.privacy.policy as policies
    from moroccan_eval.privacy.policy import load_policy, policy_fingerprint
    from moroccan_eval.resources import shipped

    shutil.copytree(shipped("anonymize"), tmp_path / "anonymize")
    policy = tmp_path / "anonymize" / "policy.yaml"
    monkeypatch.setenv("MOROCCAN_EVAL_ANONYMIZE_POLICY", str(policy))
    before = policy_fingerprint()
    assert before == load_policy().fingerprint
    load_suite(mini_suite)
    names = tmp_path / "anonymize" / load_policy().person.first_names
    names.write_text(names.read_text(encoding="utf-8") + "Zoubida\n", encoding="utf-8")
    for cached in (policies._unvalidated_fingerprint, policies._load, gate._scanner):
        cached.cache_clear()  # as in a new process
    assert policy_fingerprint() != before
    scanned: list[str] = []
    real = gate._scan
    monkeypatch.setattr(gate, "_scan", lambda suite: scanned.append(suite.name) or real(suite))
    load_suite(mini_suite)
    assert scanned == ["mini"]


@pytest.mark.parametrize("change", [
    lambda text: text + "\n  - [unclosed",
    lambda text: text.replace("person:", "person: 3\nold_person:", 1),
    lambda text: text.replace("first_names:", "first_names: [a, b]\n  old_first_names:", 1),
    lambda text: text.replace("min_score:", "min_score: high\nold_min_score:", 1),
])
def test_a_broken_policy_is_reported_on_a_warm_load_too(
        mini_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        change: Callable[[str], str]) -> None:
    from moroccan_eval.resources import shipped

    load_suite(mini_suite)  # the verdict under the shipped policy is remembered
    shutil.copytree(shipped("anonymize"), tmp_path / "anonymize")
    policy = tmp_path / "anonymize" / "policy.yaml"
    policy.write_text(change(policy.read_text(encoding="utf-8")), encoding="utf-8")
    monkeypatch.setenv("MOROCCAN_EVAL_ANONYMIZE_POLICY", str(policy))
    with pytest.raises(ConfigError, match=str(policy)):
        load_suite(mini_suite)
    code, out = invoke("run", "--suite", str(mini_suite), "--model", "majority",
                       "--out", str(tmp_path / "runs"))
    assert code == 2 and str(policy) in out and "Traceback" not in out
    assert not (tmp_path / "runs").exists()


def test_a_remembered_verdict_validates_no_policy(mini_suite: Path) -> None:
    """A warm load reads the policy's bytes for its fingerprint; it does not validate the
    policy (start-up, issue 16)."""
    import subprocess
    import sys

    load_suite(mini_suite)
    code = ("import sys; from moroccan_eval.suites.loader import load_suite; "
            f"load_suite({str(mini_suite)!r}); "
            "from moroccan_eval.privacy.policy import Policy; "
            "print(Policy.__pydantic_complete__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False"]
