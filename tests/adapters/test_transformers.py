"""The ``transformers`` adapters' pieces that need no model, nor torch: length batching,
strict options, the errors for a missing folder, a Hub id or a missing extra, and a start-up
that imports neither torch nor transformers. The models run in test_transformers_tiny.py and
test_transformers_minilm.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from moroccan_eval.adapters import build_adapter, load_model
from moroccan_eval.adapters.transformers import LengthBatcher, plan_batches
from moroccan_eval.errors import AdapterError, ConfigError

REPO = Path(__file__).resolve().parents[2]


def write_spec(path: Path, **fields: Any) -> Path:
    spec = {"name": "tiny@transformers", "adapter": "transformers", **fields}
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- no model needed


def test_batches_are_cut_by_sorted_length_within_the_token_budget() -> None:
    lengths = [50, 10, 40, 12, 11, 300]
    # budget 64 with 0 extra: 10+11+12 (3×12=36 ≤ 64, a 4th of 40 → 4×40 > 64), 40, 50, 300
    assert plan_batches(lengths, 64, 8) == [[1, 4, 3], [2], [0], [5]]
    # the new tokens count in the padded width: 2 × (12 + 20) = 64 fits, a third does not
    assert plan_batches(lengths, 64, 8, extra=20) == [[1, 4], [3], [2], [0], [5]]
    assert plan_batches(lengths, 10_000, 2) == [[1, 4], [3, 2], [0, 5]]
    assert plan_batches([], 64, 8) == []
    everything = plan_batches(lengths, 100, 3, extra=5)
    assert sorted(i for batch in everything for i in batch) == list(range(len(lengths)))
    for batch in everything:  # within budget, except a lone entry over it
        assert len(batch) == 1 or len(batch) * (max(lengths[i] for i in batch) + 5) <= 100


def test_the_batcher_groups_concurrent_requests_by_length_and_settings() -> None:
    seen: list[tuple[list[int], Any]] = []

    def run(batch: list[list[int]], key: Any) -> list[int]:
        seen.append(([len(ids) for ids in batch], key))
        return [sum(ids) for ids in batch]

    batcher: LengthBatcher[int] = LengthBatcher(run, max_tokens=30, max_size=8, wait_s=1.0,
                                                fill=6)

    async def ask() -> list[int]:
        jobs = [batcher.submit([1] * n, "greedy" if n != 7 else "sampled")
                for n in (9, 2, 5, 3, 7, 4)]
        return list(await asyncio.gather(*jobs))

    assert asyncio.run(ask()) == [9, 2, 5, 3, 7, 4]  # each answer goes back to its request
    # one cycle (all 6 arrived well before the 1 s wait): greedy ones sorted, 4×5=20 ≤ 30,
    # then 9 alone; the sampled one never shares a batch with the greedy ones
    assert seen == [([2, 3, 4, 5], "greedy"), ([9], "greedy"), ([7], "sampled")]
    assert batcher.stats.batches == 3 and batcher.stats.items == 6
    assert batcher.stats.tokens == 30 and batcher.stats.padded_tokens == 4 * 5 + 9 + 7


def test_a_failing_batch_fails_each_of_its_requests_and_the_next_cycle_runs() -> None:
    def run(batch: list[list[int]], key: Any) -> list[int]:
        if any(ids == [0] for ids in batch):
            raise RuntimeError("out of memory")
        return [len(ids) for ids in batch]

    batcher: LengthBatcher[int] = LengthBatcher(run, max_tokens=100, max_size=8, wait_s=0.05,
                                                fill=2)

    async def ask() -> tuple[list[Any], int]:
        failed = await asyncio.gather(batcher.submit([0]), batcher.submit([1, 1]),
                                      return_exceptions=True)
        return failed, await batcher.submit([1, 1, 1])  # a new cycle after the failure

    failed, later = asyncio.run(ask())
    assert all(isinstance(e, AdapterError) and "out of memory" in str(e) for e in failed)
    assert later == 3
    # the queue emptied, so its drain ended: another event loop (models check, verify) works
    assert asyncio.run(ask())[1] == 3 and batcher.stats.batches == 2


def test_options_are_strict_and_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one of model_path"):
        load_model(str(write_spec(tmp_path / "m.yaml")))
    with pytest.raises(ConfigError, match="exactly one of model_path"):
        load_model(str(write_spec(tmp_path / "m.yaml", model_path="x", model_package="y")))
    with pytest.raises(ConfigError, match="max_new_token"):  # a typo is refused, not ignored
        load_model(str(write_spec(tmp_path / "m.yaml", model_path="x", max_new_token=8)))
    with pytest.raises(ConfigError, match="model_subdir only applies"):
        load_model(str(write_spec(tmp_path / "m.yaml", model_path="x", model_subdir="m")))


def test_a_missing_folder_or_a_hub_id_says_nothing_is_downloaded(tmp_path: Path) -> None:
    spec = load_model(str(write_spec(tmp_path / "m.yaml", model_path="Qwen/Qwen2.5-0.5B")))
    with pytest.raises(ConfigError) as error:
        build_adapter(spec)
    message = str(error.value)
    assert "model_path 'Qwen/Qwen2.5-0.5B': no such folder" in message
    assert "never downloads" in message and "hf download Qwen/Qwen2.5-0.5B" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no config\.json in"):
        build_adapter(load_model(str(write_spec(tmp_path / "m.yaml",
                                                model_path=str(tmp_path / "empty")))))
    with pytest.raises(ConfigError, match=r"'no-such-model-pkg' is not installed.*pip install"):
        build_adapter(load_model(str(write_spec(tmp_path / "m.yaml",
                                                model_package="no-such-model-pkg"))))


def test_unknown_params_are_refused_before_any_load(tmp_path: Path) -> None:
    spec = load_model(str(write_spec(tmp_path / "m.yaml", model_path="nowhere",
                                     params={"temperature": 0, "max_token": 5})))
    with pytest.raises(ConfigError, match=r"params not understood.*max_token"):
        build_adapter(spec)


def test_the_cli_starts_without_torch_and_lists_the_examples() -> None:
    code = ("import sys\n"
            "from click.testing import CliRunner\n"
            "from moroccan_eval.cli import main\n"
            "from moroccan_eval.adapters import load_model, adapter_class\n"
            "result = CliRunner().invoke(main, ['models', 'list'])\n"
            "assert result.exit_code == 0, result.output\n"
            "assert 'INVALID' not in result.output, result.output\n"
            "assert 'hf-local-chat' in result.output and 'hf-minilm-embed' in result.output\n"
            "for name in ('hf-local-chat', 'hf-minilm-embed'):\n"
            "    adapter_class(load_model(name).adapter)\n"
            "heavy = sorted({'torch', 'transformers'} & set(sys.modules))\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_without_the_extra_the_error_says_how_to_install(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    spec = load_model(str(write_spec(tmp_path / "m.yaml", model_path=str(folder))))
    monkeypatch.setitem(sys.modules, "transformers", None)  # the hf extra not installed
    with pytest.raises(ConfigError, match=r"pip install 'moroccan-eval\[hf\]'"):
        build_adapter(spec)


def test_a_request_that_timed_out_before_its_batch_is_not_computed() -> None:
    seen: list[list[int]] = []

    def run(batch: list[list[int]], key: Any) -> list[int]:
        seen.append([len(ids) for ids in batch])
        return [len(ids) for ids in batch]

    batcher: LengthBatcher[int] = LengthBatcher(run, max_tokens=100, max_size=8, wait_s=0.2,
                                                fill=3)

    async def ask() -> int:
        with pytest.raises(TimeoutError):  # what the runner's limits.timeout_s does
            await asyncio.wait_for(batcher.submit([1] * 4), 0.01)
        return await batcher.submit([1, 1])

    assert asyncio.run(ask()) == 2
    assert seen == [[2]]
