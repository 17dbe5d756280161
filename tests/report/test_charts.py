"""Inline SVG charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from moroccan_eval.report.charts import Point, scatter


def test_scatter_is_valid_svg_with_escaped_labels_and_a_front() -> None:
    points = [Point("a<script>", 0.0, 0.9, True), Point("b & c", 2.0, 0.8),
              Point("cheap", 1.0, 0.95, True)]
    svg = str(scatter(points, x_label="cost <MAD>", y_label="quality", title="t"))
    root = ET.fromstring(svg)  # well-formed XML: every label was escaped
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f".//{ns}circle")) == 2 * len(points)  # points + legend
    assert root.find(f".//{ns}polyline") is not None
    texts = [el.text for el in root.iter(f"{ns}text")]
    assert "cost <MAD>" in texts and "a<script> ★" in texts


def test_degenerate_inputs() -> None:
    assert str(scatter([], x_label="x", y_label="y", title="t")) == ""
    one = str(scatter([Point("only", 0.0, 1.0, True)], x_label="x", y_label="y", title="t"))
    assert "<polyline" not in one and "nan" not in one.lower()
