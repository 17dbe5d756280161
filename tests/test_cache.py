from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from moroccan_eval.adapters.base import Response
from moroccan_eval.cache import ResponseCache, default_cache_dir
from moroccan_eval.cli import main
from moroccan_eval.errors import RunError


def test_default_cache_dir_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MOROCCAN_EVAL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "moroccan-eval"
    monkeypatch.setenv("MOROCCAN_EVAL_CACHE_DIR", str(tmp_path / "own"))
    assert default_cache_dir() == tmp_path / "own"


def test_grouped_commits_are_durable_and_visible_to_another_connection(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)

    async def store() -> None:
        await asyncio.gather(*(cache.aput("m", f"r{i}", Response(text=f"t{i}", latency_ms=i))
                               for i in range(50)))

    asyncio.run(store())
    other = sqlite3.connect(tmp_path / "responses.sqlite")
    assert other.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 50
    hit = cache.get("m", "r7")
    assert hit is not None and hit.text == "t7" and hit.latency_ms == 7
    assert cache.get("other-model", "r7") is None
    assert cache.count() == 50


def test_an_answer_is_stored_and_read_back_whole(tmp_path: Path) -> None:
    answer = Response(text="ⵜⴰⵎⴰⵣⵉⵖⵜ 🙂", tool_calls=[{"name": "lookup", "arguments": {"id": 7}}],
                      input_tokens=12, output_tokens=3, latency_ms=0.25,
                      raw={"choices": [{"message": {"content": "x"}}], "usage": {"n": [1.5]}})
    cache = ResponseCache(tmp_path)
    cache.put("m", "r1", answer)
    assert ResponseCache(tmp_path).get("m", "r1") == answer


def test_a_failed_write_reaches_every_waiting_worker(tmp_path: Path) -> None:
    """A row SQLite cannot store (a lone surrogate) must fail the waiting writers, not
    leave them waiting forever (a run with the cache on used to hang)."""
    cache = ResponseCache(tmp_path)

    async def store() -> list[BaseException | None]:
        return await asyncio.wait_for(asyncio.gather(
            cache.aput("m", "good", Response(text="fine")),
            cache.aput("m", "bad", Response(text="\ud800")), return_exceptions=True), 5)

    outcomes = asyncio.run(store())
    assert all(isinstance(o, Exception) for o in outcomes)  # same batch: both told
    assert cache.get("m", "good") is None


def test_unusable_cache_dir_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match=r"cannot open the response cache.*--no-cache"):
        ResponseCache(tmp_path / "file" / "cache")


def test_run_uses_the_cache_dir_option_and_shows_progress(tmp_path: Path,
                                                          mini_suite: Path) -> None:
    result = CliRunner().invoke(main, [
        "run", "--suite", str(mini_suite), "--model", str(FIXTURES / "models" / "keyword.yaml"),
        "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c"), "--progress"])
    assert result.exit_code == 0, result.output
    assert "12/12" in result.output  # tqdm's bar (stderr is mixed in by CliRunner)
    assert ResponseCache(tmp_path / "c").count() == 11  # the one failed item is not cached
