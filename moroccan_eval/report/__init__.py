"""The HTML report: what its sections show (:mod:`.views`), its SVG charts
(:mod:`.charts`), rendering (:mod:`.build`) and printing to PDF (:mod:`.pdf`)."""
