"""Joining the shards of a run (``run --shard i/n`` on several machines, a Slurm array or a
CI matrix) into the one run they split: the same predictions, in the order the suite
streams its items, and scores recomputed over all of them.

Shards must agree on everything but the shard: suite (version and checksum), tasks, model
spec, seed, bootstrap, exchange rate and selection; every shard 0..n-1 exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import RunError
from ..records import Manifest, PredictionRecord
from ..suites.loader import Suite, load_suite, shard_of
from .rundir import RecordsByItem, Run, RunWriter, load_all, new_run_id
from .scoring import RunTally, compute_scores

#: Manifest fields every shard must share (compared as JSON).
_SHARED = ("toolkit_version", "seed", "bootstrap", "bootstrap_draws", "usd_mad", "suite",
           "tasks", "allow_unanonymized")


def merge_runs(paths: Sequence[Path], out_dir: Path, suite: Suite | None = None) -> Path:
    """Write the run the shards at ``paths`` split into a new directory under ``out_dir``;
    returns its path. ``suite`` defaults to the shipped suite the shards name.

    Streamed: the shards' records are read, written and tallied for scoring one at a time,
    in suite order, so memory holds only the records a shard wrote before their turn (its
    answers came back out of order, within a window its concurrency bounds: at most 79
    records at concurrency 64, 201 at 256, in shards of 10,000 items), not the run."""
    runs = load_all(paths, "merge: some shards cannot be read")
    if not runs:
        raise RunError("merge: give the run directories of every shard")
    first = runs[0].manifest
    _check_shards(runs)
    if suite is None:
        suite = load_suite(first.suite.name)
    if suite.sha256 != first.suite.sha256:
        raise RunError(f"merge: suite '{suite.name}' ({suite.path}) is not the version the "
                       f"shards ran ({first.suite.ident}); give that suite with --suite")
    manifest = _merged_manifest(runs)
    tally = RunTally(manifest)
    writer = RunWriter(out_dir, manifest)
    try:
        shards = {part[0]: (run.path.name, RecordsByItem(run.predictions())) for run in runs
                  if (part := run.manifest.selection.shard_part) is not None}
        for record in _in_suite_order(suite, manifest, shards):
            tally.add(record, writer.write(record))
        extra = sum(len(records.left() | records.repeated) for _, records in shards.values())
        if extra:
            raise RunError(f"merge: the shards hold predictions of {extra} item(s) that are "
                           "not items of their selection, or repeat one; check the runs with "
                           "`verify`")
        writer.finish(compute_scores(manifest, tally, manifest.wall_s),
                      _merged_status(runs))
    except BaseException:
        writer.discard()  # no partial run left behind
        raise
    return writer.dir


def _check_shards(runs: list[Run]) -> None:
    """Every reason the runs are not the shards of one run, at once."""
    first = runs[0].manifest
    problems: list[str] = []
    seen: dict[int, Path] = {}
    total: int | None = None
    for run in runs:
        manifest, name = run.manifest, run.path.name
        part = manifest.selection.shard_part
        if part is None:
            problems.append(f"{name}: not a shard (made without --shard)")
            continue
        index, count = part
        if total is not None and count != total:
            problems.append(f"{name}: shard {index}/{count}, but others are of {total}")
        total = total or count
        if index in seen:
            problems.append(f"{name}: shard {index}/{count} already given ({seen[index].name})")
        seen[index] = run.path
        differing = [key for key in _SHARED
                     if _json(manifest, key) != _json(first, key)]
        if manifest.model.spec != first.model.spec:
            differing.append("model")
        if manifest.selection.model_copy(update={"shard": None}) != \
                first.selection.model_copy(update={"shard": None}):
            differing.append("selection")
        if differing:
            problems.append(f"{name}: differs from {runs[0].path.name} in "
                            f"{', '.join(differing)}; shards of one run share everything "
                            "but --shard")
    if total is not None:
        problems += [f"shard {i}/{total} is missing" for i in range(total) if i not in seen]
    if problems:
        raise RunError("merge: these runs are not the shards of one run", problems)


def _json(manifest: Manifest, key: str) -> object:
    return manifest.model_dump(mode="json", include={key}).get(key)


def _merged_manifest(runs: list[Run]) -> Manifest:
    first = runs[0].manifest
    manifest = first.model_copy(deep=True)
    manifest.run_id = new_run_id(first.suite.name, first.model.spec.name)
    manifest.selection = first.selection.model_copy(update={"shard": None})
    manifest.created = min(run.manifest.created for run in runs)
    # machine time: each shard's server was paid for while it ran (hosting cost)
    manifest.wall_s = round(sum(run.manifest.wall_s or 0.0 for run in runs), 3)
    return manifest


def _in_suite_order(suite: Suite, manifest: Manifest, shards: dict[int, tuple[str, RecordsByItem]]
                    ) -> Iterator[PredictionRecord]:
    """The shards' records in the order an unsharded run would have taken the items."""
    selection = manifest.selection
    for name in manifest.tasks:
        for item in suite.task(name).items(selection.split, selection.varieties,
                                           selection.limit, seed=manifest.seed,
                                           sampling=selection.sampling):
            shard, records = shards[shard_of(item["group"], len(shards))]
            record = records.take((name, item["id"]))
            if record is None:
                raise RunError(f"merge: shard {shard} has no prediction for item "
                               f"'{item['id']}' of task '{name}', which its selection holds; "
                               "check it with `verify`")
            yield record


def _merged_status(runs: list[Run]) -> str:
    """``complete`` when every shard is, else the first other status (a spend cap stopped
    that shard), naming its shard."""
    for run in runs:
        status = run.manifest.status
        if status != "complete":
            return f"{status} (shard {run.manifest.selection.shard})"
    return "complete"
