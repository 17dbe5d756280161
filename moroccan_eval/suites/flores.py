"""FLORES+ imported, not re-hosted: ``moroccan-eval suites import-flores PATH``.

FLORES+ (the FLORES-200 benchmark of NLLB Team et al., 2022, now maintained by the Open
Language Data Initiative) is released under CC BY-SA 4.0 with a request: do not re-host it
as plain text where crawlers find it (it would leak into training corpora and stop being a
benchmark). So the toolkit ships none of it: the user downloads a release and this module
builds a local suite from it, whose card records the source, licence, attribution and that
request (and whose folder carries a ``.gitignore`` so it is not committed by accident).

Layouts read (found anywhere under PATH, or inside a release zip without unpacking it):

- the GitHub release zip ``floresp-v2.X.zip`` (password-protected, the password is in the
  repository's README) or its unpacked folder: ``dev/dev.ary_Arab``,
  ``devtest/devtest.ary_Arab`` — one sentence per line, line *n* is sentence id *n*;
- the FLORES-200 tarball's folder: ``dev/ary_Arab.dev``, ``devtest/ary_Arab.devtest``;
- the Hugging Face dataset ``openlanguagedata/flores_plus`` downloaded as files:
  ``dev/ary_Arab.parquet``, ``devtest/ary_Arab.parquet`` (columns ``id``, ``text`` and
  metadata such as ``domain``, ``topic``, ``url``).

The suite: FLORES ``devtest`` is the scored ``test`` split, ``dev`` the few-shot split;
sentence *n* of every language shares the group ``<split>-<n>``, so degradation between
varieties is paired on the same sentence. Tasks: ``to_english`` and ``to_french``
(translation from the other varieties) and ``variety`` (identify which of the five).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..io import JSONObject, write_jsonl
from .schema import Item, check_suite_name
from .seal import write_checksums

LANGUAGES = ("ary_Arab", "arb_Arab", "fra_Latn", "zgh_Tfng", "eng_Latn")
SPLITS = {"devtest": "test", "dev": "dev"}  # FLORES split -> suite split
CONSENT_ID = "flores_plus"
DEFAULT_PASSWORD = "multilingual machine translation"  # published in the FLORES+ README
MAX_FILE_BYTES = 64 << 20  # a language file is ~0.3 MB; refuse anything absurd

#: Task -> (target language, source languages).
TRANSLATION_TASKS = {
    "to_english": ("eng_Latn", ("ary_Arab", "arb_Arab", "fra_Latn", "zgh_Tfng")),
    "to_french": ("fra_Latn", ("ary_Arab", "arb_Arab", "zgh_Tfng", "eng_Latn")),
}
LANGUAGE_NAMES = {"ary_Arab": "Moroccan Arabic (Darija), Arabic script",
                  "arb_Arab": "Modern Standard Arabic", "fra_Latn": "French",
                  "zgh_Tfng": "Standard Moroccan Amazigh, Tifinagh", "eng_Latn": "English"}


class _Source:
    """The files of a FLORES release: a folder or a zip archive read in place."""

    def __init__(self, path: Path, password: str | None) -> None:
        self.path = path
        self.password = (password or DEFAULT_PASSWORD).encode("utf-8")
        self.zip: zipfile.ZipFile | None = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ConfigError(f"{path}: not a zip archive or folder of a FLORES+ release "
                                  f"({exc})") from None
            self.names = [i.filename for i in self.zip.infolist() if not i.is_dir()]
        elif path.is_dir():
            self.names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        else:
            raise ConfigError(f"{path}: no such file or folder; download a FLORES+ release "
                              "first (see `moroccan-eval suites import-flores --help`)")

    def read(self, name: str) -> bytes:
        if self.zip is None:
            file = self.path / name
            if file.stat().st_size > MAX_FILE_BYTES:
                raise ConfigError(f"{file}: larger than {MAX_FILE_BYTES >> 20} MB; not a "
                                  "FLORES+ language file")
            return file.read_bytes()
        info = self.zip.getinfo(name)
        if info.file_size > MAX_FILE_BYTES:
            raise ConfigError(f"{self.path}: {name}: larger than {MAX_FILE_BYTES >> 20} MB; "
                              "not a FLORES+ language file")
        try:
            return self.zip.read(name, pwd=self.password)
        except RuntimeError as exc:  # a wrong or missing password
            raise ConfigError(f"{self.path}: {name}: cannot be decrypted ({exc}); give the "
                              "release's password with --password") from None
        except zlib.error as exc:
            # ZipCrypto checks a wrong password against one byte only: 1 time in 256 it
            # passes and the "decrypted" bytes fail to decompress instead
            reason = ("the password is probably wrong" if info.flag_bits & 0x1
                      else "damaged archive")
            raise ConfigError(f"{self.path}: {name}: cannot be decrypted or read ({reason}: "
                              f"{exc}); give the release's password with --password") from None
        except NotImplementedError as exc:  # AES-encrypted or an unknown compression
            raise ConfigError(f"{self.path}: {name}: {exc}; unpack the archive (e.g. 7z x) "
                              "and give the folder instead") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise ConfigError(f"{self.path}: {name}: damaged archive ({exc})") from None

    def find(self, split: str, lang: str) -> str | None:
        """The member holding ``lang`` in ``split``, in any of the known layouts."""
        patterns = (rf"(^|/){split}/{split}\.{lang}$", rf"(^|/){split}/{lang}\.{split}$",
                    rf"(^|/){split}/(.*[/_-])?{lang}(-[^/]*)?\.parquet$")
        for pattern in patterns:
            found = sorted(n for n in self.names if re.search(pattern, n))
            if found:
                return found[0]
        return None


def _sentences(source: _Source, name: str) -> list[tuple[str, JSONObject]]:
    """(sentence, meta) in id order from a text or parquet file."""
    where = f"{source.path}: {name}" if source.zip is not None else str(source.path / name)
    raw = source.read(name)
    if name.endswith(".parquet"):
        return _parquet_sentences(where, raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out: list[tuple[str, JSONObject]] = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            raise ConfigError(f"{where}: line {number} is empty; a FLORES+ file holds one "
                              "sentence per line")
        out.append((line, {}))
    return out


def _parquet_sentences(where: str, raw: bytes) -> list[tuple[str, JSONObject]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(raw))
    except Exception as exc:  # pyarrow raises several unrelated types on bad input
        raise ConfigError(f"{where}: cannot be read as parquet: {exc}") from None
    if "text" not in table.column_names:
        raise ConfigError(f"{where}: no column 'text' (columns: "
                          f"{', '.join(table.column_names)})")
    rows = table.to_pylist()
    if "id" in table.column_names:
        rows.sort(key=lambda r: int(r["id"]))
    out: list[tuple[str, JSONObject]] = []
    for number, row in enumerate(rows, start=1):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where}: row {number}: empty text")
        meta: JSONObject = {k: str(row[k]) for k in ("domain", "topic", "url")
                            if row.get(k) not in (None, "")}
        out.append((text, meta))
    return out


def _release_name(path: Path, source: _Source) -> str:
    for text in [path.name, *source.names[:1]]:
        if match := re.search(r"v\d+\.\d+(?:[-.][0-9A-Za-z.]+?)?(?=\.zip$|/|$)", text):
            return match.group(0)
    return "release not named in the file names"


def read_release(path: Path, password: str | None = None
                 ) -> tuple[dict[str, dict[str, list[tuple[str, JSONObject]]]], str]:
    """FLORES split -> language -> sentences, every language of a split the same length;
    and the release name (e.g. ``v2.0-rc.3``)."""
    source = _Source(path, password)
    found: dict[str, dict[str, list[tuple[str, JSONObject]]]] = {}
    problems: list[str] = []
    for split in SPLITS:
        members = {lang: source.find(split, lang) for lang in LANGUAGES}
        if not any(members.values()):
            continue
        if missing := [lang for lang, name in members.items() if name is None]:
            problems.append(f"{split}: no file for {', '.join(missing)} (expected e.g. "
                            f"{split}/{split}.{missing[0]} or {split}/{missing[0]}.parquet)")
            continue
        found[split] = {lang: _sentences(source, name)
                        for lang, name in members.items() if name is not None}
        sizes = {lang: len(s) for lang, s in found[split].items()}
        if len(set(sizes.values())) > 1:
            problems.append(f"{split}: the languages are not parallel (sentences: "
                            + ", ".join(f"{k} {v}" for k, v in sizes.items()) + ")")
    if problems:
        raise ConfigError(f"{path}: not a complete FLORES+ release for "
                          f"{', '.join(LANGUAGES)}", problems)
    if not found:
        raise ConfigError(f"{path}: no FLORES+ dev or devtest file found (expected "
                          "dev/dev.ary_Arab, devtest/devtest.ary_Arab, ... or "
                          "dev/ary_Arab.parquet, ...)")
    return found, _release_name(path, source)


def _items(release: dict[str, dict[str, list[tuple[str, JSONObject]]]]
           ) -> dict[str, list[Item]]:
    tasks: dict[str, list[Item]] = {name: [] for name in [*TRANSLATION_TASKS, "variety"]}
    for flores_split, languages in release.items():
        split = SPLITS[flores_split]
        count = len(languages[LANGUAGES[0]])
        for index in range(count):
            group = f"{flores_split}-{index + 1:04d}"
            meta: JSONObject = {"flores_split": flores_split, "flores_id": index + 1,
                                **languages["eng_Latn"][index][1]}
            for task, (target, sources) in TRANSLATION_TASKS.items():
                for lang in sources:
                    tasks[task].append(_item(group, split, lang, languages[lang][index][0],
                                             languages[target][index][0], meta))
            for lang in LANGUAGES:
                tasks["variety"].append(_item(group, split, lang, languages[lang][index][0],
                                              lang, meta))
    return tasks


def _item(group: str, split: str, lang: str, text: str, reference: str,
          meta: JSONObject) -> Item:
    return {"id": f"{group}-{lang}", "group": group, "split": split, "variety": lang,
            "fields": {"text": text}, "reference": reference, "consent_id": CONSENT_ID,
            "meta": dict(meta)}


def _task_files() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, (target, _) in TRANSLATION_TASKS.items():
        language = LANGUAGE_NAMES[target]
        out[name] = {
            "name": name, "version": "1", "type": "translation",
            "description": f"Translate a FLORES+ sentence into {language}.",
            "data": f"data/{name}.jsonl", "input_fields": ["text"],
            "metrics": ["chrf", "bleu"], "few_shot": 0,
            "prompt": {"system": f"Translate the sentence into {language}. Answer with the "
                                 "translation only.",
                       "user": "{% for ex in examples %}Sentence: {{ ex.fields.text }}\n"
                               "Translation: {{ ex.reference }}\n\n{% endfor %}"
                               "Sentence: {{ text }}\nTranslation:"},
        }
    out["variety"] = {
        "name": "variety", "version": "1", "type": "classification",
        "description": "Identify which of five languages or varieties a FLORES+ sentence is "
                       "written in (Darija and MSA in Arabic script are the hard pair).",
        "data": "data/variety.jsonl", "input_fields": ["text"],
        "metrics": ["accuracy", "macro_f1"], "few_shot": 0,
        "labels": {lang: {"description": LANGUAGE_NAMES[lang]} for lang in LANGUAGES},
        "prompt": {"system": "Identify the language variety of the sentence. Answer with the "
                             "code only.",
                   "user": "Varieties:\n{% for label in labels %}- {{ label }}: "
                           "{{ label_descriptions[label] }}\n{% endfor %}\n"
                           "{% for ex in examples %}Sentence: {{ ex.fields.text }}\n"
                           "Variety: {{ ex.reference }}\n\n{% endfor %}"
                           "Sentence: {{ text }}\nVariety:"},
    }
    return out


ATTRIBUTION = (
    "FLORES+ by the Open Language Data Initiative (OLDI), https://github.com/openlanguagedata/"
    "flores, CC BY-SA 4.0; originally FLORES-200 by NLLB Team et al. (2022), \"No Language "
    "Left Behind: Scaling Human-Centered Machine Translation\", and FLORES-101 by Goyal et "
    "al. (2022), TACL 10. English sentences from Wikinews, Wikijunior and Wikivoyage, "
    "translated by professional translators.")

CARD = """---
sources: {sources}
authors: {authors}
consent:
  basis: consent_register
  details: {consent}
anonymization: {anonymization}
retention: {retention}
validation_status: {validation}
validation_by_variety:
{by_variety}
known_gaps: {gaps}
---
# {name} — datasheet (imported FLORES+ {release})

**Do not re-publish this suite's data as plain text** (no public repository, web page or
leaderboard upload of `data/`): the FLORES+ maintainers ask that it not be re-hosted where
crawlers find it, so that it stays out of training corpora and remains a benchmark. The
folder carries a `.gitignore` that keeps git from committing it. Share the command that
builds it instead:

    moroccan-eval suites import-flores floresp-{release}.zip

## Licence and attribution
CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/). {attribution} Imported
with moroccan-eval on {date}; the sentences are unchanged (item ids
`<flores split>-<sentence id>-<language>`).

## Composition
FLORES `devtest` is this suite's scored `test` split, `dev` its few-shot `dev` split.
Sentence *n* of every language shares the group `<split>-<n>`, so differences between
varieties are paired on the same sentence. Tasks:

- `to_english`: ary_Arab, arb_Arab, fra_Latn, zgh_Tfng → English (chrF, BLEU);
- `to_french`: ary_Arab, arb_Arab, zgh_Tfng, eng_Latn → French;
- `variety`: which of ary_Arab, arb_Arab, fra_Latn, zgh_Tfng, eng_Latn (accuracy, macro F1).

Counts: `moroccan-eval suites stats {name}`.

## Native review
<!-- review:begin -->
<!-- review:end -->
"""


def _yaml_str(text: str) -> str:
    return yaml.safe_dump(text, allow_unicode=True, width=10_000).strip().removesuffix(
        "\n...").strip()


def import_flores(source: Path, out_dir: Path, *, name: str = "flores-plus",
                  password: str | None = None) -> tuple[Path, dict[str, int]]:
    """Build the suite ``out_dir/<name>`` from a FLORES+ release; nothing is written on
    error. Returns its folder and the items per task/split/variety."""
    check_suite_name(name)
    target = out_dir / name
    if target.exists():
        raise ConfigError(f"{target}: already exists; remove it or choose another --name")
    release, release_name = read_release(source, password)
    tasks = _items(release)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out_dir))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's folder is private (0700)
        _write(staging, name, release_name, tasks)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    counts: dict[str, int] = {}
    for task, items in tasks.items():
        for item in items:
            key = f"{task} {item['split']}/{item['variety']}"
            counts[key] = counts.get(key, 0) + 1
    return target, counts


def _write(staging: Path, name: str, release: str, tasks: dict[str, list[Item]]) -> None:
    today = datetime.now(UTC).date().isoformat()
    (staging / "tasks").mkdir()
    (staging / "data").mkdir()
    for task, spec in _task_files().items():
        (staging / "tasks" / f"{task}.yaml").write_text(
            yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
        write_jsonl(staging / "data" / f"{task}.jsonl", tasks[task])
    # git ignores the whole folder (this file included): the data must not be pushed anywhere
    (staging / ".gitignore").write_text(
        "# FLORES+ must not be re-hosted as plain text: keep this imported suite local.\n*\n",
        encoding="utf-8")
    card = CARD.format(
        name=name, release=release, date=today, attribution=ATTRIBUTION,
        sources=_yaml_str(f"FLORES+ {release}, downloaded by the user and imported with "
                          f"`moroccan-eval suites import-flores` on {today}. {ATTRIBUTION}"),
        authors=_yaml_str("NLLB Team et al. (FLORES-200), the Open Language Data Initiative "
                          "(FLORES+); imported by the user of moroccan-eval"),
        consent=_yaml_str("No personal data was collected: published Wikimedia sentences and "
                          "their professional translations, used under their licence (CC "
                          "BY-SA 4.0), recorded as the register entry 'flores_plus' in "
                          "consent.yaml."),
        anonymization=_yaml_str("Not anonymized, and not needed: encyclopedic, news and "
                                "travel sentences that name public figures and places only; "
                                "the loader's PII scan runs on every item (PERSON allowed, "
                                "see suite.yaml pii_allowed)."),
        retention=_yaml_str("Kept on the user's machine for evaluation only; delete the "
                            "folder to remove it. Do not re-publish the data as plain text "
                            "(FLORES+ maintainers' request)."),
        validation=_yaml_str(f"published benchmark, professionally translated and checked "
                             f"by its maintainers (FLORES+ {release}); native review pending "
                             "for every variety"),
        by_variety="\n".join(f"  {lang}: native review pending" for lang in LANGUAGES),
        gaps=_yaml_str(
            "Formal written register translated from English Wikimedia text: the ary_Arab "
            "side is edited Darija close to MSA, with no Arabizi, no code-switching and no "
            "chat features, so it says little about users' messages (use the shipped "
            "suites for that). eng_Latn is the original; every other language is a "
            "translation of it. zgh_Tfng is Standard Moroccan Amazigh (relabelled from "
            "tzm_Tfng in FLORES+ 2.0). Public since 2022: models may have seen it."),
    )
    (staging / "CARD.md").write_text(card, encoding="utf-8")
    (staging / "consent.yaml").write_text(yaml.safe_dump({"consents": [{
        "id": CONSENT_ID,
        "source": f"FLORES+ {release} (CC BY-SA 4.0), imported by the user: {ATTRIBUTION}",
        "scope": "evaluation", "given": today, "expires": None, "withdrawn": None,
    }], "tombstones": []}, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
    (staging / "suite.yaml").write_text(yaml.safe_dump({
        "name": name, "version": "1.0.0",
        "description": f"FLORES+ {release} (imported, not shipped): translation into English "
                       "and French and variety identification, Darija, MSA, French, "
                       "Amazigh (Tifinagh), English",
        "license": "CC-BY-SA-4.0",
        "reference_variety": "arb_Arab",
        "tasks": [*TRANSLATION_TASKS, "variety"],
        "checksums": {},
        "pii_allowed": {"PERSON": "names of public figures in published Wikinews, Wikijunior "
                                  "and Wikivoyage sentences (FLORES+), not personal data of "
                                  "users"},
    }, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
    write_checksums(staging)
