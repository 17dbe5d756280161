"""The consent register of a suite (``consent.yaml``), withdrawal, retention and audit.

``consent.yaml``::

    consents:
      - id: C-2026-014
        source: "support chats of shop X, exported 2026-05-02"
        scope: evaluation          # evaluation | publication
        given: 2026-05-01
        expires: 2027-05-01        # optional
        withdrawn: null            # set by `moroccan-eval consent withdraw`
    tombstones: []                 # item ids removed by withdrawal, with the date

The register may instead be a spreadsheet export, ``consent.csv`` with the columns
``id,source,scope,given,expires,withdrawn`` (dates as YYYY-MM-DD, empty when none); its
tombstones then go to ``tombstones.csv`` (``item_id,consent_id,removed``). The schema is
``anonymize/consent-register.schema.json``.

Every item carries ``consent_id``: an id of this register, or ``authored`` for text the
project wrote. Withdrawal removes every item of that consent from the data files,
reseals the suite, and records tombstones (ids and date, no content) and an audit entry
in ``audit.jsonl`` next to the register.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ConfigError, did_you_mean
from ..io import (
    JSONObject,
    csv_delimiter,
    iter_jsonl,
    load_model_yaml,
    validate,
    write_atomic,
    write_jsonl,
)
from ..suites.seal import write_checksums
from ..version import __version__

REGISTER = "consent.yaml"
REGISTER_CSV = "consent.csv"
TOMBSTONES_CSV = "tombstones.csv"
CONSENT_COLUMNS = ("id", "source", "scope", "given", "expires", "withdrawn")
TOMBSTONE_COLUMNS = ("item_id", "consent_id", "removed")
AUDIT = "audit.jsonl"
AUTHORED = "authored"
#: built on first use: most suites have no register, and a warm load reads none
_REGISTER_MODEL = ConfigDict(extra="forbid", defer_build=True)


class Consent(BaseModel):
    model_config = _REGISTER_MODEL
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    scope: Literal["evaluation", "publication"]
    given: date
    expires: date | None = None
    withdrawn: date | None = None

    @model_validator(mode="after")
    def _expires_after_given(self) -> Consent:
        if self.expires is not None and self.expires < self.given:  # a typo in a date
            raise ValueError(f"consent '{self.id}' expires ({self.expires}) before it was "
                             f"given ({self.given})")
        return self

    def problem(self, today: date) -> str | None:
        if self.withdrawn is not None:
            return f"withdrawn on {self.withdrawn}"
        if self.expires is not None and self.expires < today:
            return f"expired on {self.expires}"
        return None


class Tombstone(BaseModel):
    model_config = _REGISTER_MODEL
    item_id: str
    consent_id: str
    removed: date


class Register(BaseModel):
    model_config = _REGISTER_MODEL
    consents: list[Consent] = Field(default_factory=list)
    tombstones: list[Tombstone] = Field(default_factory=list)

    def get(self, consent_id: str) -> Consent | None:
        return next((c for c in self.consents if c.id == consent_id), None)


def today() -> date:
    return datetime.now(UTC).date()


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str | None]]:
    # as spreadsheets save it: a byte-order mark, and semicolons in French locales
    with path.open(encoding="utf-8-sig", newline="") as fh:
        delimiter = csv_delimiter(fh.readline())
        fh.seek(0)
        reader = csv.DictReader(fh, delimiter=delimiter)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(missing)} (expected "
                              f"{','.join(columns)})")
        return [{k: (v or None) for k, v in row.items() if k in columns} for row in reader]


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[JSONObject]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    write_atomic(path, out.getvalue())


def load_register(suite_dir: Path) -> Register | None:
    """The suite's register from ``consent.yaml`` or ``consent.csv``; ``None`` if neither."""
    path = suite_dir / REGISTER
    if path.is_file():
        return load_model_yaml(Register, path, "consent register")
    path = suite_dir / REGISTER_CSV
    if not path.is_file():
        return None
    tombstones = suite_dir / TOMBSTONES_CSV
    data = {"consents": _read_csv(path, CONSENT_COLUMNS),
            "tombstones": _read_csv(tombstones, TOMBSTONE_COLUMNS)
            if tombstones.is_file() else []}
    return validate(Register, data, str(path))


def save_register(suite_dir: Path, register: Register) -> None:
    """Write the register back in the form it was read in."""
    data = register.model_dump(mode="json")
    if (suite_dir / REGISTER_CSV).is_file() and not (suite_dir / REGISTER).is_file():
        _write_csv(suite_dir / REGISTER_CSV, CONSENT_COLUMNS, data["consents"])
        _write_csv(suite_dir / TOMBSTONES_CSV, TOMBSTONE_COLUMNS, data["tombstones"])
        return
    write_atomic(suite_dir / REGISTER, yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=100))


def audit(suite_dir: Path, action: str, **details: object) -> None:
    """Append an audit entry (never item text) to the suite's ``audit.jsonl``."""
    entry = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "action": action,
             "tool": f"moroccan-eval {__version__}", **details}
    with (suite_dir / AUDIT).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


def consent_problems(suite_dir: Path, usage: dict[str, list[str]], on: date | None = None,
                     ) -> list[str]:
    """Problems with the consents items rely on. ``usage`` maps consent id → item ids."""
    on = on or today()
    needed = {cid: ids for cid, ids in usage.items() if cid != AUTHORED}
    if not needed:
        return []
    register = load_register(suite_dir)
    if register is None:
        first = next(iter(needed))
        return [f"{suite_dir / REGISTER}: missing, but items rely on consents (e.g. item "
                f"{needed[first][0]}: consent_id '{first}'); add the consent register "
                f"({REGISTER} or {REGISTER_CSV})"]
    problems = []
    for cid, ids in sorted(needed.items()):
        consent = register.get(cid)
        example = f"{len(ids)} item(s), e.g. {ids[0]}"
        if consent is None:
            problems.append(f"{suite_dir / REGISTER}: no consent '{cid}' ({example})"
                            + did_you_mean(cid, [c.id for c in register.consents]))
        elif (why := consent.problem(on)) is not None:
            fix = ("moroccan-eval retention purge" if why.startswith("expired")
                   else "moroccan-eval consent withdraw")
            problems.append(f"consent '{cid}' {why} but still used by {example}; run "
                            f"`{fix} {suite_dir} {cid if 'withdraw' in fix else ''}`".rstrip())
    return problems


@dataclass
class Withdrawal:
    consent_id: str
    removed: int
    files: list[str]


def withdraw(suite_dir: Path, consent_id: str, on: date | None = None) -> Withdrawal:
    """Remove every item of ``consent_id`` from the suite's data, reseal the suite and
    record tombstones and an audit entry. Data files are rewritten atomically."""
    on = on or today()
    register = load_register(suite_dir)
    if register is None:
        raise ConfigError(f"{suite_dir / REGISTER}: no consent register in this suite")
    consent = register.get(consent_id)
    if consent is None:
        raise ConfigError(f"{suite_dir / REGISTER}: no consent '{consent_id}'"
                          + did_you_mean(consent_id, [c.id for c in register.consents]))
    removed: list[str] = []
    files = []
    for path in sorted((suite_dir / "data").glob("*.jsonl")):
        kept: list[JSONObject] = []
        dropped: list[JSONObject] = []
        for _, item in iter_jsonl(path):
            (dropped if item.get("consent_id") == consent_id else kept).append(item)
        if dropped:
            write_jsonl(path, kept)
            removed += [str(i.get("id")) for i in dropped]
            files.append(path.relative_to(suite_dir).as_posix())
    consent.withdrawn = consent.withdrawn or on
    register.tombstones += [Tombstone(item_id=i, consent_id=consent_id, removed=on)
                            for i in removed]
    save_register(suite_dir, register)
    write_checksums(suite_dir)
    audit(suite_dir, "withdraw", consent_id=consent_id, items_removed=len(removed),
          files=files)
    return Withdrawal(consent_id, len(removed), files)


def expired(suite_dir: Path, on: date | None = None) -> list[Consent]:
    """Consents past their expiry date that are not withdrawn yet."""
    register = load_register(suite_dir)
    on = on or today()
    return [c for c in (register.consents if register else [])
            if c.withdrawn is None and c.expires is not None and c.expires < on]


def usage(suite_dir: Path) -> Counter[str]:
    """How many items rely on each consent id."""
    counts: Counter[str] = Counter()
    for path in sorted((suite_dir / "data").glob("*.jsonl")):
        for _, item in iter_jsonl(path):
            counts[str(item.get("consent_id"))] += 1
    return counts
