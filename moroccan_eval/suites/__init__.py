"""Evaluation suites: their file formats (:mod:`.schema`), seals (:mod:`.seal`), the
loader with its checks and gates (:mod:`.loader`, :mod:`.checks`), statistics for cards
(:mod:`.stats`) and ``suites import`` (:mod:`.importer`).

This package's ``__init__`` imports nothing: the privacy tools use the leaf modules
:mod:`.schema` and :mod:`.seal` without pulling in the loader, which calls them.
"""
