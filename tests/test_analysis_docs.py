"""docs/depth_analysis.md agrees with the statistics and pictures it was made from."""

import json
import re
from pathlib import Path

from matplotlib.image import imread

from keras_act.analysis import PAPER_MEAN_UPDATES
from keras_act.depth_categories import CATEGORY_TITLES, DEPTH_CATEGORIES

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGE = (DOCS / "depth_analysis.md").read_text()


def table_rows(heading_cell):
    """The cells of the Markdown table whose header starts with `heading_cell`."""
    lines = PAGE.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {heading_cell} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("*") for cell in line.strip("|").split("|")])
    return rows


def test_table_is_the_recorded_statistics():
    data = json.loads((DOCS / "depth_analysis" / "depth_statistics.json").read_text())
    assert data["paper"] == "tiny" and data["max_layers"] == 6
    assert data["metadata"]["corpus"] == ["runs/depth_analysis/heldout.tokens"]
    recorded = {row["name"]: row for row in data["categories"]}
    rows = table_rows("Category")
    assert [row[0] for row in rows] == [CATEGORY_TITLES[name] for name in DEPTH_CATEGORIES]
    for row, name in zip(rows, DEPTH_CATEGORIES, strict=True):
        assert row[1] == f"{recorded[name]['mean_updates']:.2f}", name
        assert float(row[3]) == PAPER_MEAN_UPDATES["tiny"][name], name
    assert f"{recorded['all']['count']:,} tokens" in PAGE
    assert f"{data['num_examples']} pre-training" in PAGE


def test_pictures_are_there():
    names = re.findall(r"\]\((depth_analysis/[\w.]+\.png)\)", PAGE)
    assert sorted(names) == [
        "depth_analysis/depth_heatmap.png",
        "depth_analysis/depth_histograms.png",
        "depth_analysis/depth_profiles.png",
    ]
    for name in names:
        image = imread(DOCS / name)
        assert image.shape[0] >= 300 and image.shape[1] >= 1000, name
