"""The static leaderboard: submissions packaged from run directories
(:mod:`.submission`), checked by rescoring everything from raw outputs (:mod:`.validate`),
gathered into one typed board (:mod:`.board`) and written as a static site (:mod:`.site`).

Templates and messages live at the repository root under ``leaderboard/templates`` so a
leaderboard's maintainers can override them like the report's.
"""
