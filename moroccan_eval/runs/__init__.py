"""Running models on a suite and the run directories it writes.

- :mod:`.requests`: one request to a model: building it from an item, rate limits,
  retries with backoff, the canary;
- :mod:`.runner`: items × models with concurrency, the response cache, a spend cap and
  progress;
- :mod:`.rundir`: the run directory (manifest, predictions, scores), written and read;
- :mod:`.scoring`: per-item judgements and ``scores.json`` from stored records.

Named ``runs``, not ``run``: a subpackage ``run`` would shadow ``moroccan_eval.run()``.
Nothing is imported here, so ``import moroccan_eval.runs.rundir`` stays light.
"""
