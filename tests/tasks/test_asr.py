"""Speech: WER/CER with Moroccan-aware normalisation, the transcription adapter over HTTP,
and the loader's audio checks."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import edit_items

from moroccan_eval.adapters import load_model
from moroccan_eval.errors import SuiteError
from moroccan_eval.mockserver import MockServer
from moroccan_eval.report.build import build_report
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.tasks.asr import asr_edits
from moroccan_eval.verify import verify_run


def test_normalised_and_raw_error_rates() -> None:
    assert asr_edits("wer", "أين وصل طلبي", "أينَ وصلَ طلبيّ") == (0, 3)  # diacritics
    assert asr_edits("wer", "Bonjour, ça va ?", "bonjour ca va") == (0, 3)
    assert asr_edits("wer_raw", "Bonjour, ça va ?", "bonjour ca va") == (3, 3)  # 2 sub, 1 ins
    assert asr_edits("wer", "", "fin wslat lcommande") == (3, 3)  # nothing heard
    errors, length = asr_edits("cer", "bghit", "bghiit")
    assert errors == 1 and length == 6


TRANSCRIBE = "data/transcribe.jsonl"


def _speech_suite(tmp_path: Path) -> Path:
    target = tmp_path / "speech-demo"
    shutil.copytree(load_suite("speech-demo", load_data=False).path, target)
    return target


def test_transcription_endpoint_end_to_end(tmp_path: Path, server: MockServer) -> None:
    suite = load_suite("speech-demo")
    items = list(suite.task("transcribe").items("test"))
    # The scripted server hears the French perfectly and nothing of the Arabic.
    server.behaviour.transcripts = {Path(i["fields"]["audio"]).name: i["reference"]
                                    for i in items if i["variety"] == "fra_Latn"}
    spec = tmp_path / "asr.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "mock-asr", "adapter": "openai_audio", "base_url": server.base_url,
        "model": "whisper-mock", "language": "fr",
        "limits": {"concurrency": 2, "timeout_s": 5, "retries": 1}}), encoding="utf-8")
    [result] = run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False),
                   [load_model(str(spec))])
    entry = result.scores.to_json()["tasks"]["transcribe"]
    assert server.requests == len(items)
    assert entry["varieties"]["fra_Latn"]["wer"]["value"] == 0.0
    assert entry["varieties"]["arb_Arab"]["wer"]["value"] == 1.0
    delta = entry["varieties"]["arb_Arab"]["delta_vs_reference"]["wer"]
    assert delta["value"] == 1.0 and delta["significant"]
    usage = entry["usage"]
    assert usage["audio_s"] > 10 and usage["rtfx"] > 1
    runs = [load_run(result.path)]
    assert verify_run(runs[0]).ok
    html = build_report(runs)
    assert "lower is better" in html and "wer" in html


def test_loader_checks_audio_files(tmp_path: Path) -> None:
    suite = _speech_suite(tmp_path)
    (suite / "data" / "audio" / "broken.wav").write_bytes(b"not audio")

    def corrupt(rows: list[dict[str, Any]]) -> None:
        rows[0]["fields"]["duration_s"] = 99.0
        rows[1]["fields"]["audio"] = "data/audio/missing.wav"
        rows[2]["fields"]["audio"] = "../../etc/passwd"
        rows[3]["fields"]["audio"] = "data/audio/broken.wav"

    edit_items(suite, TRANSCRIBE, corrupt)
    with pytest.raises(SuiteError) as error:
        load_suite(suite)
    message = str(error.value)
    assert "fields.duration_s says 99.0 s" in message
    assert "must name an audio file inside the suite" in message
    assert "'../../etc/passwd'" in message
    assert "is not a readable WAV file" in message


def _tone(path: Path, seconds: float) -> Path:
    """A real compressed recording (FLAC, MP3, Ogg: by suffix) of a 440 Hz tone."""
    import numpy as np
    import soundfile

    samples = np.sin(np.arange(int(16000 * seconds)) / 16000 * 2 * np.pi * 440) * 0.3
    soundfile.write(str(path), samples.astype("float32"), 16000)
    return path


def test_loader_reads_durations_of_compressed_audio(tmp_path: Path) -> None:
    suite = _speech_suite(tmp_path)

    def compressed(rows: list[dict[str, Any]]) -> None:
        for row, suffix, seconds in ((rows[0], "flac", 2.0), (rows[1], "mp3", 1.5),
                                     (rows[2], "ogg", 1.0)):
            _tone(suite / "data" / "audio" / f"tone.{suffix}", seconds)
            row["fields"].update(audio=f"data/audio/tone.{suffix}", duration_s=seconds)

    edit_items(suite, TRANSCRIBE, compressed)
    load_suite(suite)  # every declared duration matches
    (suite / "data" / "audio" / "fake.mp3").write_bytes(b"ID3 but no frames")

    def broken(rows: list[dict[str, Any]]) -> None:
        rows[0]["fields"]["duration_s"] = 3.0
        rows[1]["fields"]["audio"] = "data/audio/fake.mp3"

    edit_items(suite, TRANSCRIBE, broken)
    with pytest.raises(SuiteError) as error:
        load_suite(suite)
    assert "fields.duration_s says 3.0 s but data/audio/tone.flac lasts 2.00 s" in str(error.value)
    assert "fake.mp3 is not a readable audio file" in str(error.value)


def test_command_adapter_gets_the_suite_folder_for_audio_paths(tmp_path: Path) -> None:
    program = tmp_path / "asr.py"
    program.write_text(
        "import json, os, sys\n"
        "for line in sys.stdin:\n"
        "    req = json.loads(line)\n"
        "    path = os.path.join(req['root'], req['input']['audio'])\n"
        "    text = 'heard ' + str(os.path.getsize(path)) if os.path.isfile(path) else ''\n"
        "    print(json.dumps({'id': req['id'], 'text': text}), flush=True)\n",
        encoding="utf-8")
    spec = tmp_path / "cmd.yaml"

    spec.write_text(yaml.safe_dump({"name": "local-asr", "adapter": "command",
                                    "command": [sys.executable, str(program)]}),
                    encoding="utf-8")
    [result] = run(RunOptions(suite=load_suite("speech-demo"), out_dir=tmp_path / "runs",
                              limit=2, progress=False), [load_model(str(spec))])
    outputs = [r["output"] for r in load_run(result.path).predictions()]
    assert outputs and all(o.startswith("heard ") for o in outputs)


def test_import_a_recorded_corpus_from_csv(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from moroccan_eval.cli import main

    shipped = load_suite("speech-demo")
    (tmp_path / "recordings").mkdir()
    rows = ["path,transcript,variety,consent"]
    for n, item in enumerate(list(shipped.task("transcribe").items("test"))[:4]):
        name = Path(item["fields"]["audio"]).name
        if n == 3:  # one recording in FLAC: its duration is read too
            name = _tone(tmp_path / "recordings" / "last.flac", 1.25).name
        else:
            shutil.copyfile(shipped.path / item["fields"]["audio"],
                            tmp_path / "recordings" / name)
        rows.append(f"recordings/{name},\"{item['reference']}\",{item['variety']},C-7")
    (tmp_path / "corpus.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    args = ["suites", "import", str(tmp_path / "corpus.csv"), "--format", "csv", "--task-type",
            "asr", "--map", "audio=path,reference=transcript,variety=variety", "--name", "calls",
            "--out", str(tmp_path / "suites"), "--split-ratio", "0", "--consent-id", "C-7"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    suite_dir = tmp_path / "suites" / "calls"
    for name in ("suite.yaml", "CARD.md", "consent.yaml"):  # the licence is a TODO too
        path = suite_dir / name
        path.write_text(path.read_text(encoding="utf-8").replace("TODO:", "Filled:"),
                        encoding="utf-8")
    task = load_suite(suite_dir).task("main")
    items = list(task.items("test"))
    assert task.spec.type == "asr" and len(items) == 4
    assert all(i["fields"]["audio"].startswith("data/audio/") and i["fields"]["duration_s"] > 0
               for i in items)
    assert [i["fields"]["duration_s"] for i in items if i["fields"]["audio"].endswith(".flac")
            ] == [1.25]
    (tmp_path / "recordings" / Path(rows[1].split(",")[0]).name).unlink()
    result = CliRunner().invoke(main, [*args[:-6], "--name", "calls2", "--out",
                                       str(tmp_path / "suites"), "--split-ratio", "0"])
    assert result.exit_code == 2 and "no audio file" in result.output
    assert not (tmp_path / "suites" / "calls2").exists()


def test_faster_whisper_transcribes_from_a_local_model_directory(tmp_path: Path) -> None:
    from tiny_whisper import make_tiny_whisper

    model_dir = make_tiny_whisper(tmp_path / "tiny-whisper")  # random weights, built here
    spec = tmp_path / "local.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "tiny-whisper", "adapter": "faster_whisper", "model_path": str(model_dir),
        "compute_type": "float32", "language": "fr", "beam_size": 1,
        "params": {"temperature": 0.0, "without_timestamps": True},
        "limits": {"concurrency": 2, "timeout_s": 60, "retries": 0}}), encoding="utf-8")
    [result] = run(RunOptions(suite=load_suite("speech-demo"), out_dir=tmp_path / "runs",
                              limit=2, progress=False), [load_model(str(spec))])
    entry = result.scores.to_json()["tasks"]["transcribe"]
    assert result.status == "complete" and entry["usage"]["n_errors"] == 0
    records = list(load_run(result.path).predictions())
    assert len(records) == 4 and all(r["output"] for r in records)  # real (garbage) text
    assert entry["overall"]["wer"]["value"] > 0.5  # random weights do not transcribe
    assert entry["usage"]["audio_s"] > 0 and entry["usage"]["rtfx"] > 0


def test_faster_whisper_refuses_a_folder_without_a_model(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tiny_whisper import make_tiny_whisper

    from moroccan_eval.adapters import build_adapter
    from moroccan_eval.errors import ConfigError

    spec = tmp_path / "local.yaml"
    spec.write_text(yaml.safe_dump({"name": "w", "adapter": "faster_whisper",
                                    "model_path": str(tmp_path)}), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_model(str(spec))
    assert "model_path" in str(error.value) and "never downloads one" in str(error.value)
    spec.write_text(yaml.safe_dump({"name": "w", "adapter": "faster_whisper", "model_path": str(
        make_tiny_whisper(tmp_path / "m"))}), encoding="utf-8")
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # the asr extra not installed
    with pytest.raises(ConfigError, match=r"pip install 'moroccan-eval\[asr\]'"):
        build_adapter(load_model(str(spec)))
