"""Paired comparison of two runs of the same suite: B − A per task, variety and metric,
over the items both runs answered; and the noisy rows of the report (a ``test_noisy`` run
against the clean ``test`` run of the same model, paired by group)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .. import tasks, varieties
from ..errors import RunError
from ..records import PredictionRecord
from ..runs.rundir import Run
from ..runs.scoring import reparse
from ..stats.bootstrap import GroupedBuilder, Resampling, stable_id
from ..stats.counted import CountedBuilder
from ..suites.schema import clean_split
from ..tasks.base import TaskType
from .summary import Score


@dataclass
class Difference:
    task: str
    variety: str
    metric: str
    n_pairs: int
    a: float | None
    b: float | None
    delta: float | None
    ci: tuple[float, float] | None
    significant: bool
    higher_is_better: bool = True
    a_ci: tuple[float, float] | None = None  # each side's own 95% interval on the pairs
    b_ci: tuple[float, float] | None = None


def compare_runs(run_a: Run, run_b: Run) -> list[Difference]:
    """B − A per task × variety × metric over the items both runs answered, with a paired
    bootstrap CI (items resampled once, both runs scored on the same resample). Every task
    type is compared with its own scorer: the two runs become two "varieties" of the same
    items, A the reference.

    Runs of the same split pair item by item (same id). A shadow split's run (``test_noisy``)
    and a run of the split it re-types (``test``) pair by task, variety and group: each
    noisy item with the clean item of the same meaning.

    The runs are read one record at a time into each task's scoring builders (a label
    task's counted on disk, another's kept as numbers per item), which keep the pairs'
    items only: nothing holds the runs' records."""
    if run_a.manifest.suite.name != run_b.manifest.suite.name:
        raise RunError(f"cannot compare runs of different suites: "
                       f"{run_a.manifest.suite.ident} and {run_b.manifest.suite.ident}")
    key = _pairing(run_a.manifest.selection.split, run_b.manifest.selection.split)
    comparisons = {task: _TaskComparison(tasks.for_spec(info.spec))
                   for task, info in run_a.manifest.tasks.items() if task in run_b.manifest.tasks}
    for side, run in (("A", run_a), ("B", run_b)):
        for record in reparse(run.manifest, run.predictions()):
            comparison = comparisons.get(record["task"])
            if comparison is not None:
                comparison.add({**record, "variety": side, "group": key(record)},
                               record["variety"])
    resampling = Resampling.of(run_a.manifest)
    out: list[Difference] = []
    for task, comparison in sorted(comparisons.items()):
        out += comparison.differences(task, resampling)
    if not out:
        raise RunError("the two runs share no scored item; compare runs of the same suite "
                       "and split (or a test run with the test_noisy run of the same suite)")
    return out


class _TaskComparison:
    """One task's records of both runs (as varieties ``A`` and ``B``, grouped by what pairs
    them), for every variety and all of them pooled."""

    def __init__(self, task_type: TaskType):
        self.task_type = task_type
        self.builders: dict[str, GroupedBuilder | CountedBuilder] = {}

    def add(self, record: PredictionRecord, variety: str) -> None:
        for pooled in (variety, "all"):
            builder = self.builders.get(pooled)
            if builder is None:  # details are not compared
                builder = self.builders[pooled] = self.task_type.builder(details=False)
            builder.add(record)

    def differences(self, task: str, resampling: Resampling) -> list[Difference]:
        """The task's differences per variety (in the registry's order) and ``all``, over
        the items both runs hold."""
        order = list(varieties.registry())
        pooled = sorted(self.builders, key=lambda c: (
            c == "all", order.index(c) if c in order else len(order), c))
        out = []
        for variety in pooled:
            grouped = self.builders[variety].build(complete=True)
            if grouped.varieties != ["A", "B"]:
                continue  # no item of the variety in both runs
            scored = self.task_type.score_grouped(grouped, "A", replace(
                resampling, seed=resampling.seed + stable_id(variety) % 1000))
            for metric in self.task_type.selected_metrics():
                a, b = scored["A"].metrics.get(metric), scored["B"].metrics.get(metric)
                delta = scored["B"].deltas.get(metric)
                out.append(Difference(  # B − A
                    task=task, variety=variety, metric=metric, n_pairs=scored["A"].n,
                    a=a.value if a else None, b=b.value if b else None,
                    delta=delta.value if delta else None, ci=delta.ci if delta else None,
                    significant=bool(delta and delta.significant),
                    higher_is_better=self.task_type.higher_is_better(metric),
                    a_ci=a.ci if a else None, b_ci=b.ci if b else None))
        return out


def _pairing(split_a: str, split_b: str) -> Callable[[PredictionRecord], str]:
    """How records of two runs pair: by id within a split, by (variety, group) between a
    shadow split and the split it re-types; other splits do not pair."""
    if split_a == split_b:
        return lambda r: r["id"]
    if clean_split(split_a) == split_b or clean_split(split_b) == split_a:
        return lambda r: f"{r['variety']}\0{r['group']}"
    raise RunError(f"cannot pair a {split_a} run with a {split_b} run: compare runs of the "
                   "same split, or a test_noisy run with the test run of the same suite")


# --------------------------------------------------------------------------- noisy rows


@dataclass
class NoisyRow:
    """A model's run of a shadow split (``test_noisy``) beside its clean run: per variety
    (and ``all``), the headline metric on the noisy items and its paired change against
    the same groups' clean items (noisy − clean)."""

    model: str
    suite: str  # the suite's ident: both runs used the same files
    task: str
    split: str
    metric: str
    clean: Run
    noisy: Run
    cells: dict[str, Difference]  # variety or "all" -> A clean, B noisy

    def score(self, variety: str) -> Score | None:
        """The noisy score of a variety (or ``all``) with its interval, its delta being the
        paired change against the clean items of the same groups."""
        d = self.cells.get(variety)
        if d is None:
            return None
        return Score(value=d.b, ci=d.b_ci, n=d.n_pairs, delta=d.delta, delta_ci=d.ci,
                     significant=d.significant)


def pair_noisy_runs(runs: Sequence[Run]) -> tuple[list[Run], list[tuple[Run, Run]]]:
    """Split ``runs`` into the runs to summarise and (clean, noisy) pairs: an unperturbed
    run of a shadow split pairs with the latest unperturbed run of the split it re-types,
    of the same model and suite (same version and files). A noisy run without its clean run
    stays a run of its own."""
    clean: dict[tuple[str, str, str], Run] = {}
    for run in sorted(runs, key=lambda r: r.manifest.run_id):
        selection = run.manifest.selection
        if not selection.perturb and clean_split(selection.split) is None:
            clean[(run.model, run.manifest.suite.ident, selection.split)] = run
    kept: list[Run] = []
    pairs: list[tuple[Run, Run]] = []
    for run in runs:
        selection = run.manifest.selection
        shadowed = clean_split(selection.split)
        base = None if shadowed is None or selection.perturb else clean.get(
            (run.model, run.manifest.suite.ident, shadowed))
        if base is None:
            kept.append(run)
        else:
            pairs.append((base, run))
    return kept, pairs


def noisy_rows(pairs: Sequence[tuple[Run, Run]]) -> list[NoisyRow]:
    """One row per task of every (clean, noisy) pair, on the task's headline metric."""
    rows: list[NoisyRow] = []
    for base, noisy in pairs:
        try:
            diffs = compare_runs(base, noisy)
        except RunError:
            continue  # no group in common: nothing to pair
        for task in sorted({d.task for d in diffs}):
            metric = noisy.manifest.tasks[task].spec.metrics[0]
            rows.append(NoisyRow(
                model=noisy.model, suite=noisy.manifest.suite.ident, task=task,
                split=noisy.manifest.selection.split, metric=metric, clean=base, noisy=noisy,
                cells={d.variety: d for d in diffs if d.task == task and d.metric == metric}))
    return rows
