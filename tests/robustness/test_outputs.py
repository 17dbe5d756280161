"""Outputs go through a temporary file and a rename; a destination that is not a regular
file (a FIFO, a device, a folder) is refused and left as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from moroccan_eval.cli import main

LEGACY = Path(__file__).parent.parent / "fixtures" / "legacy_runs"
RUN = str(sorted(LEGACY.iterdir())[0])


@pytest.mark.parametrize("command", [["report", RUN], ["export", RUN]])
def test_an_output_onto_a_fifo_is_refused_and_the_fifo_kept(tmp_path: Path,
                                                             command: list[str]) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    result = CliRunner().invoke(main, [*command, "-o", str(fifo)])
    assert result.exit_code == 1, result.output
    assert "exists and is not a regular file" in result.output
    assert "Traceback" not in result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.fifo"]  # no temporary file left


def test_an_output_onto_a_folder_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", RUN, "-o", str(tmp_path)])
    assert result.exit_code == 1 and "not a regular file" in result.output


def test_a_device_is_refused_before_anything_is_written() -> None:
    from moroccan_eval.errors import OutputError
    from moroccan_eval.io import write_atomic

    with pytest.raises(OutputError, match="not a regular file"):
        write_atomic(Path("/dev/null"), "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_an_existing_regular_file_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    out.write_text("old")
    result = CliRunner().invoke(main, ["export", RUN, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("run_id,")
