"""Analysis of finished runs: per-model summaries and Pareto fronts (:mod:`.summary`),
paired comparison of two runs (:mod:`.compare`) and the recommendation
(:mod:`.recommendation`)."""
